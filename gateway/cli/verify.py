"""``anchorline verify PROOF.json --msp <auditor MSP> --peer <profile | embedded>``.

Runs every offline check of the proof (docs/proof-format.md steps 1–10) and
then asks the ledger — with the auditor's own identity, through its own
org's peer, never through the gateway — that the batch root is anchored in
that transaction and block, in the channel's unbroken chain. Certificates are
checked at the anchor's time as the ledger records it ("valid at the time",
docs/proof-format.md); with ``--gateway-keys`` the batch must also be signed by
a key of the gateway's key history that was not retired at the batch's height. Prints one line
per check and a verdict; exits 0 only when every check holds, 1 otherwise
(2 for a usage error).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from pathlib import Path

from gateway.anchoring.audit import verify_on_ledger
from gateway.anchoring.keyhistory import KeyHistory, anchor_position
from gateway.anchoring.ledger import auditor_ledger
from gateway.anchoring.proof import Check, EventProof, verify_offline
from gateway.config import load_settings
from gateway.errors import InvalidInput
from gateway.ledger.connection import open_ledger


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify", help="verify an event proof offline and against the ledger"
    )
    parser.add_argument("proof", help="the proof JSON (GET /events/{channel}/{seq}/proof)")
    parser.add_argument("--msp", required=True, help="the auditor's own MSP folder")
    parser.add_argument(
        "--peer",
        required=True,
        help="network profile (its own org's peer is used) or embedded[:<ledger folder>]",
    )
    parser.add_argument("--msp-id", help="the auditor's MSP id (default: from its certificate)")
    parser.add_argument(
        "--pkcs11-key",
        metavar="LABEL",
        default="",
        help="the identity's key is this key of the [pkcs11] token (not a keystore file)",
    )
    parser.add_argument("--gateway-msp", help="require the batch to be signed by this MSP")
    parser.add_argument("--offline", action="store_true", help="skip the ledger checks")
    parser.add_argument(
        "--gateway-keys",
        help="the gateway's key history (GET /gateway/keys, kept by the auditor): the batch "
        "must be signed by a key not yet retired at its height",
    )
    parser.add_argument(
        "--at",
        help="with --offline: check certificates at this ISO time (default: now); online "
        "they are checked at the anchor's time, as the ledger records it",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(handler=_run)


def _load(path: str) -> EventProof:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    return EventProof.from_json(text)


async def _verify(args: argparse.Namespace) -> tuple[list[Check], str]:
    proof = _load(args.proof)
    history = _history(args.gateway_keys) if args.gateway_keys else None
    settings = load_settings()
    conn = open_ledger(
        settings,
        peer=args.peer,
        msp_dir=args.msp,
        msp_id=args.msp_id,
        key_label=args.pkcs11_key,
    )
    try:
        # "Valid at the time": certificates are checked at the anchor's time, so a
        # revocation or expiry after it leaves the anchored event verifiable.
        ledger = auditor_ledger(conn)
        position = None if args.offline else await anchor_position(proof, ledger)
        at = position.at if position else _at(args.at)
        verdict = verify_offline(proof, conn.trust, at=at, gateway_msp=args.gateway_msp)
        checks = list(verdict.checks)
        if history is not None:
            height = position.height if position else _claimed_height(proof)
            checks.append(
                history.check_batch(proof.batch.certificate_pem, proof.batch.channel, height)
            )
        if not args.offline:
            checks += await verify_on_ledger(proof, ledger)
        where = f"{conn.kind} ledger as {conn.msp_id}"
    finally:
        await conn.close()
    return checks, where


def _history(path: str) -> KeyHistory:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    return KeyHistory.from_json(text)


def _at(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--at {value!r} is not an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _claimed_height(proof: EventProof) -> int:
    """Offline, the batch's place is the one its id claims (``<channel>/<number>``)."""
    number = proof.batch.batch_id.rpartition("/")[2]
    return int(number) - 1 if number.isdigit() else 1 << 62


def _run(args: argparse.Namespace) -> int:
    checks, where = asyncio.run(_verify(args))
    ok = bool(checks) and all(c.ok for c in checks)
    if args.json:
        body = {
            "verified": ok,
            "ledger": where,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        }
        print(json.dumps(body, indent=2))
    else:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        failed = [c.name for c in checks if not c.ok]
        print(
            f"VERIFIED: every check holds ({where})"
            if ok
            else f"NOT VERIFIED: {', '.join(failed)} failed ({where})"
        )
    return 0 if ok else 1
