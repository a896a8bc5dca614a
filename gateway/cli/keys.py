"""``anchorline keys``: the gateway's signing key and members' keys in a PKCS#11 token.

- ``keys generate --label L`` — a P-256 key pair in the token of the ``[pkcs11]``
  settings (non-extractable, sensitive); prints its public key.
- (``anchorline network enroll ... --pkcs11-key L [--generate-key]`` enrols an
  identity for a token key with the built-in CA or Fabric CA.)
- ``keys rotate-gateway (--label L | --msp-dir DIR [--label L])`` — rotate the
  gateway's key: the current key is retired in the key history (per channel,
  the last batch it signed and the log size), the new one becomes current.
  Without ``--msp-dir`` the new key (in the token, generated with
  ``--generate``) is enrolled with the built-in CA as ``anchorline-gateway-<L>``.
  Stop the gateway first, then start it with the printed settings.
- ``keys history`` — the key history as JSON (what ``GET /gateway/keys`` serves).

The PIN is read from ``pkcs11.pin_file`` or ``ANCHORLINE_PKCS11_PIN``, never
from the command line. Every failure is one ``error AL12xx/AL17xx: ...`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from gateway.clock import now_ms
from gateway.config import Settings, load_settings

if TYPE_CHECKING:
    from gateway.identity.ca import EmbeddedCA
    from gateway.identity.pkcs11 import Token


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "keys", help="keys in a PKCS#11 token; rotate the gateway's signing key"
    )
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    gen = sub.add_parser("generate", help="generate a P-256 key pair in the token")
    gen.add_argument("--label", required=True, help="the new key's label")
    gen.set_defaults(handler=_generate)

    add_rotate_arguments(
        sub.add_parser("rotate-gateway", help="retire the gateway's key, make a new one current")
    )

    history = sub.add_parser("history", help="print the gateway's key history (JSON)")
    history.add_argument("--database-url", help="the gateway's store (default: its settings)")
    history.set_defaults(handler=_history)


def add_rotate_arguments(rotate: argparse.ArgumentParser) -> None:
    """The rotation's options (also ``anchorline gateway rotate-key``)."""
    rotate.add_argument("--label", help="the new key's label in the token")
    rotate.add_argument("--generate", action="store_true", help="generate the new key first")
    rotate.add_argument("--msp-dir", help="the new identity's MSP folder (already enrolled)")
    rotate.add_argument("--database-url", help="the gateway's store (default: its settings)")
    rotate.set_defaults(handler=_rotate)


def _token(settings: Settings) -> Token:
    from gateway.identity.pkcs11 import Token, TokenConfig

    return Token.open(TokenConfig.from_settings(settings.pkcs11))


def _generate(args: argparse.Namespace) -> int:
    token = _token(load_settings())
    try:
        signer = token.generate_key(args.label)
        spki = signer.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        print(f"generated P-256 key {args.label!r} in token {token.label!r} (non-extractable)")
        print(f"public key (DER SPKI, base64): {base64.b64encode(spki).decode()}")
    finally:
        token.close()
    return 0


def _embedded_ca(settings: Settings) -> EmbeddedCA:
    from gateway.identity.ca import EmbeddedCA

    return EmbeddedCA(settings.embedded_dir / "ca")


def _database_url(settings: Settings, override: str | None) -> str:
    from gateway.app import database_url

    return override or database_url(settings)


def _current_gateway_msp(settings: Settings) -> Path:
    from gateway.ledger.connection import EMBEDDED_GATEWAY_NAME

    if settings.ledger.msp_dir:
        return Path(settings.ledger.msp_dir)
    ca = _embedded_ca(settings)
    return ca.identity_dir(settings.anchoring.gateway_org, EMBEDDED_GATEWAY_NAME)


async def _rotate_in_store(settings: Settings, url: str, old_msp: Path, new_msp: Path) -> str:
    from gateway.anchoring.keyhistory import ensure_current, rotate
    from gateway.anchoring.outbox import BatchStore
    from gateway.identity.msp import load_msp
    from gateway.store.engine import create_engine, migrate

    msp_id = f"{settings.anchoring.gateway_org}MSP"
    old = load_msp(old_msp, msp_id).identity
    new = load_msp(new_msp, msp_id).identity
    engine = create_engine(url)
    try:
        await migrate(engine)
        store = BatchStore(engine)
        now = now_ms()
        await ensure_current(store, old, now_ms=now)
        history = await rotate(store, new, now_ms=now)
    finally:
        await engine.dispose()
    retired, current = history.keys[-2], history.keys[-1]
    marks = ", ".join(
        f"{c}: batches 1..{m.batches}, log size {m.log_size}"
        for c, m in sorted(retired.retired_after.items())
    )
    return (
        f"retired key {retired.key_id} ({marks or 'no batches yet'}); current key {current.key_id}"
    )


def _rotate(args: argparse.Namespace) -> int:
    from gateway.errors import InvalidInput

    settings = load_settings()
    if not args.msp_dir and not args.label:
        raise InvalidInput("give the new key: --label (a key in the token) or --msp-dir")
    old_msp = _current_gateway_msp(settings)
    if args.msp_dir:
        new_msp = Path(args.msp_dir)
        if args.label:
            # Refuse a label that does not hold the certificate's key before anything changes.
            from gateway.identity.keysource import close_signer, load_identity

            _, signer = load_identity(
                new_msp,
                f"{settings.anchoring.gateway_org}MSP",
                pkcs11=settings.pkcs11,
                key_label=args.label,
            )
            close_signer(signer)
    else:
        from gateway.identity.keysource import enroll_in_token
        from gateway.ledger.connection import EMBEDDED_GATEWAY_NAME

        token = _token(settings)
        try:
            new_msp = enroll_in_token(
                _embedded_ca(settings),
                token,
                org=settings.anchoring.gateway_org,
                name=f"{EMBEDDED_GATEWAY_NAME}-{args.label}",
                role="admin",
                key_label=args.label,
                generate=args.generate,
            )
        finally:
            token.close()
    summary = asyncio.run(
        _rotate_in_store(settings, _database_url(settings, args.database_url), old_msp, new_msp)
    )
    print(f"rotated the gateway's key: {summary}")
    print("restart the gateway with:")
    print(f"  ANCHORLINE_LEDGER_MSP_DIR={new_msp}")
    print(f"  ANCHORLINE_PKCS11_KEY_LABEL={args.label or ''}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from gateway.anchoring.keyhistory import load_history
    from gateway.anchoring.outbox import BatchStore
    from gateway.store.engine import create_engine, migrate

    settings = load_settings()

    async def read() -> dict[str, object]:
        engine = create_engine(_database_url(settings, args.database_url))
        try:
            await migrate(engine)
            return (await load_history(BatchStore(engine))).to_json()
        finally:
            await engine.dispose()

    print(json.dumps(asyncio.run(read()), indent=2))
    return 0
