"""``anchorline verify PROOF.json --msp <auditor MSP> --peer <profile | embedded>``.

Runs every offline check of the proof (docs/proof-format.md steps 1–10) and
then asks the ledger — with the auditor's own identity, through its own
org's peer, never through the gateway — that the batch root is anchored in
that transaction and block, in the channel's unbroken chain. Prints one line
per check and a verdict; exits 0 only when every check holds, 1 otherwise
(2 for a usage error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from gateway.anchoring.audit import verify_on_ledger
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
    parser.add_argument("--gateway-msp", help="require the batch to be signed by this MSP")
    parser.add_argument("--offline", action="store_true", help="skip the ledger checks")
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
    settings = load_settings()
    conn = open_ledger(settings, peer=args.peer, msp_dir=args.msp, msp_id=args.msp_id)
    try:
        verdict = verify_offline(proof, conn.trust, gateway_msp=args.gateway_msp)
        checks = list(verdict.checks)
        if not args.offline:
            checks += await verify_on_ledger(proof, auditor_ledger(conn))
        where = f"{conn.kind} ledger as {conn.msp_id}"
    finally:
        await conn.close()
    return checks, where


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
