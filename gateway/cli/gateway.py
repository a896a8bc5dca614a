"""``anchorline gateway run``: serve the real-time gateway (REST + Socket.IO);
``anchorline gateway rotate-key``: rotate its signing key (see gateway.cli.keys)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import sys

from aiohttp import web

from gateway.config import Settings, load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("gateway", help="run the real-time gateway")
    sub = parser.add_subparsers(dest="gateway_command", metavar="ACTION")
    run = sub.add_parser("run", help="serve REST and Socket.IO until interrupted")
    run.add_argument("--host", help="listen address (default: gateway.host)")
    run.add_argument("--port", type=int, help="listen port (default: gateway.port)")
    run.add_argument("--database-url", help="sqlite:///file or postgresql://... URL")
    run.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    run.set_defaults(handler=_run)
    from gateway.cli.keys import add_rotate_arguments

    add_rotate_arguments(
        sub.add_parser(
            "rotate-key", help="rotate the gateway's signing key (= anchorline keys rotate-gateway)"
        )
    )

    def _usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=_usage)


def _ledger_name(settings: Settings) -> str:
    """The ledger the gateway reports; ``auto`` is resolved the way the CLI documents."""
    if settings.ledger.kind != "auto":
        return settings.ledger.kind
    from network.errors import FabricNotFound
    from network.install import find_fabric

    try:
        find_fabric(settings.fabric_home)
    except FabricNotFound:
        return "embedded"
    return "fabric"


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    overrides = {
        k: v
        for k, v in (
            ("host", args.host),
            ("port", args.port),
            ("database_url", args.database_url),
        )
        if v is not None
    }
    if overrides:
        settings = dataclasses.replace(
            settings, gateway=dataclasses.replace(settings.gateway, **overrides)
        )
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from gateway.app import create_app

    if settings.gateway.use_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            logging.getLogger(__name__).info("uvloop is not installed: using asyncio's loop")
    ledger = _ledger_name(settings)
    app = create_app(settings, ledger=ledger)
    # Objects alive at start-up never become garbage: keep them out of the
    # collector's full passes, which would otherwise show up as latency spikes.
    gc.collect()
    gc.freeze()
    # The event store's writer thread needs the GIL for a moment at each step of
    # a commit; with the default 5 ms switch interval a busy event loop makes it
    # wait that long each time (measured: 1,600-2,000 → 2,400-2,700 events/s
    # in scripts/bench/gateway_inprocess.py with 0.5 ms).
    sys.setswitchinterval(0.0005)
    print(
        f"anchorline gateway on http://{settings.gateway.host}:{settings.gateway.port} "
        f"(ledger: {ledger})",
        flush=True,
    )
    web.run_app(
        app,
        host=settings.gateway.host,
        port=settings.gateway.port,
        print=None,
        access_log=None,
        handle_signals=True,
    )
    return 0
