"""``anchorline verify PROOF.json --msp <auditor MSP> --peer <profile | embedded>``.

Runs every offline check of the proof (docs/proof-format.md steps 1–10) and
then asks the ledger — with the auditor's own identity, through its own
org's peer, never through the gateway — that the batch root is anchored in
that transaction and block, in the channel's unbroken chain. Certificates are
checked at the anchor's time as the ledger records it ("valid at the time",
docs/proof-format.md); with ``--gateway-keys`` the batch must also be signed by
a key of the gateway's key history that was not retired at the batch's height. Prints one line
per check and a verdict; exits 0 only when every check holds, 1 otherwise
(2 for a usage error). A proof that cannot be read (not UTF-8, not JSON,
nested too deep, an unknown field…) is one line ``error ALxxxx: …``, exit 1.

``anchorline verify PROOF.json --offline --msp Org1MSP=<folder> --msp …``
reads only the proof and the MSP folders given (one per MSP id, the CA
certificates and CRLs an auditor holds): it opens no ledger, needs no
network and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.anchoring.audit import verify_on_ledger
from gateway.anchoring.proof import Check, EventProof, verify_offline
from gateway.config import load_settings
from gateway.errors import InvalidInput
from gateway.identity.certificates import TrustStore

if TYPE_CHECKING:  # --offline loads no store or ledger modules
    from gateway.anchoring.keyhistory import KeyHistory


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify", help="verify an event proof offline and against the ledger"
    )
    parser.add_argument("proof", help="the proof JSON (GET /events/{channel}/{seq}/proof)")
    parser.add_argument(
        "--msp",
        required=True,
        action="append",
        metavar="[MSPID=]FOLDER",
        help="the auditor's own MSP folder; with --offline, the trusted MSPs, "
        "one MSPID=FOLDER per MSP (repeat the option)",
    )
    parser.add_argument(
        "--peer",
        help="network profile (its own org's peer is used) or embedded[:<ledger folder>]; "
        "required unless --offline",
    )
    parser.add_argument("--msp-id", help="the auditor's MSP id (default: from its certificate)")
    parser.add_argument(
        "--pkcs11-key",
        metavar="LABEL",
        default="",
        help="the identity's key is this key of the [pkcs11] token (not a keystore file)",
    )
    parser.add_argument("--gateway-msp", help="require the batch to be signed by this MSP")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="no ledger: check the proof against the --msp folders only, writing nothing",
    )
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
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    # Bytes, not text: the strict reader names invalid UTF-8 with its own code.
    return EventProof.from_json(data)


def _split_msp(spec: str) -> tuple[str | None, str]:
    msp_id, sep, folder = spec.partition("=")
    if not sep:
        return None, spec
    if not msp_id or not folder:
        raise InvalidInput(f"--msp {spec!r}: use MSPID=FOLDER")
    return msp_id, folder


def offline_trust(specs: list[str]) -> TrustStore:
    """The trust store of ``MSPID=FOLDER`` specs: it only reads the folders."""
    dirs: dict[str, str] = {}
    for spec in specs:
        msp_id, folder = _split_msp(spec)
        if msp_id is None:
            raise InvalidInput(f"--offline needs --msp MSPID=FOLDER, not {spec!r}")
        if msp_id in dirs:
            raise InvalidInput(f"--msp names {msp_id} twice")
        dirs[msp_id] = folder
    return TrustStore.from_msp_dirs(dirs)


async def _verify(args: argparse.Namespace) -> tuple[list[Check], str]:
    proof = _load(args.proof)
    history = _history(args.gateway_keys) if args.gateway_keys else None
    if args.offline:
        if args.peer is not None:
            raise InvalidInput("--offline reads only the proof and the --msp folders: drop --peer")
        trust = offline_trust(args.msp)
        verdict = verify_offline(proof, trust, at=_at(args.at), gateway_msp=args.gateway_msp)
        checks = list(verdict.checks)
        if history is not None:
            checks.append(
                history.check_batch(
                    proof.batch.certificate_pem, proof.batch.channel, _claimed_height(proof)
                )
            )
        return checks, f"offline, trusting {', '.join(trust.msp_ids)}"
    if args.peer is None:
        raise InvalidInput("--peer is required (or --offline with the trusted MSP folders)")
    if len(args.msp) != 1:
        raise InvalidInput("give one --msp: the auditor's own MSP folder")
    spec_id, folder = _split_msp(args.msp[0])
    # Imported here: --offline must not load the ledger packages at all.
    from gateway.anchoring.keyhistory import anchor_position
    from gateway.anchoring.ledger import auditor_ledger
    from gateway.ledger.connection import open_ledger

    settings = load_settings()
    conn = open_ledger(
        settings,
        peer=args.peer,
        msp_dir=folder,
        msp_id=args.msp_id or spec_id,
        key_label=args.pkcs11_key,
    )
    try:
        # "Valid at the time": certificates are checked at the anchor's time, so a
        # revocation or expiry after it leaves the anchored event verifiable.
        ledger = auditor_ledger(conn)
        position = await anchor_position(proof, ledger)
        at = position.at if position else _at(args.at)
        verdict = verify_offline(proof, conn.trust, at=at, gateway_msp=args.gateway_msp)
        checks = list(verdict.checks)
        if history is not None:
            height = position.height if position else _claimed_height(proof)
            checks.append(
                history.check_batch(proof.batch.certificate_pem, proof.batch.channel, height)
            )
        checks += await verify_on_ledger(proof, ledger)
        where = f"{conn.kind} ledger as {conn.msp_id}"
    finally:
        await conn.close()
    return checks, where


def _history(path: str) -> KeyHistory:
    from gateway.anchoring.keyhistory import KeyHistory

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
