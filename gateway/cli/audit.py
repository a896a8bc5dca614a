"""``anchorline audit <channel>``: walk the anchored chain and check it against the store.

Reads every batch the anchor chaincode holds for the channel (through the
given identity and its own org's peer) and compares it with the gateway's
database: events missing or altered, batches missing from the store,
batches or events never anchored, broken chain links. Exits 0 only when the
store and the chain agree (events still pending are reported, not failed).
"""

from __future__ import annotations

import argparse
import asyncio

from gateway.anchoring.audit import AuditReport, audit_channel, report_json
from gateway.anchoring.ledger import AnchorLedger, auditor_ledger, trust_path_ledger
from gateway.anchoring.outbox import BatchStore
from gateway.config import load_settings
from gateway.ledger.connection import open_ledger
from gateway.store.engine import create_engine
from gateway.store.events import EventRepository


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit", help="check a channel's anchored chain against the gateway's store"
    )
    parser.add_argument("channel", help="the Anchorline channel to audit")
    parser.add_argument(
        "--database-url", help="the gateway's database (default: gateway.database_url)"
    )
    parser.add_argument("--msp", help="MSP folder to read the ledger as (default: the gateway's)")
    parser.add_argument(
        "--peer", help="network profile or embedded[:<folder>] (with --msp; default: settings)"
    )
    parser.add_argument("--msp-id", help="the identity's MSP id (default: from its certificate)")
    parser.add_argument(
        "--pkcs11-key",
        metavar="LABEL",
        default="",
        help="the identity's key is this key of the [pkcs11] token (not a keystore file)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=_run)


async def _audit(args: argparse.Namespace) -> AuditReport:
    settings = load_settings()
    from gateway.app import database_url

    url = args.database_url or database_url(settings)
    ledger: AnchorLedger
    if args.msp:
        conn = open_ledger(
            settings,
            peer=args.peer or "embedded",
            msp_dir=args.msp,
            msp_id=args.msp_id,
            key_label=args.pkcs11_key,
        )
        close = conn.close
        ledger = auditor_ledger(conn)
    else:
        conn = open_ledger(settings)
        close = conn.close
        try:
            ledger = trust_path_ledger(
                conn, settings.anchoring, call_timeout_s=settings.ledger.submit_timeout_s
            )
        except BaseException:
            await close()
            raise
    engine = create_engine(url)
    try:
        return await audit_channel(
            args.channel, BatchStore(engine), EventRepository(engine), ledger
        )
    finally:
        await engine.dispose()
        await close()


def _run(args: argparse.Namespace) -> int:
    report = asyncio.run(_audit(args))
    print(report_json(report) if args.json else report.summary())
    return 0 if report.ok else 1
