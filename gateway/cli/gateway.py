"""``anchorline gateway run``: serve the real-time gateway (REST + Socket.IO)."""

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
    run.add_argument("--log-level", help="DEBUG, INFO, WARNING (default: gateway.log_level)")
    run.add_argument("--log-format", choices=("plain", "json"), help="default: gateway.log_format")
    run.set_defaults(handler=_run)

    tls = sub.add_parser(
        "tls-cert",
        help="issue the gateway's TLS certificate and key from the built-in CA "
        "(for a Fabric CA, enrol with --enrollment.profile tls and set the files instead)",
    )
    tls.add_argument("--org", default="Org1", help="the org whose CA signs it (default Org1)")
    tls.add_argument(
        "--host",
        action="append",
        dest="hosts",
        help="a DNS name or IP address clients dial (repeatable; default localhost, 127.0.0.1)",
    )
    tls.add_argument("--name", default="gateway-tls", help="enrolment name (default gateway-tls)")
    tls.set_defaults(handler=_tls_cert)

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


def _tls_cert(args: argparse.Namespace) -> int:
    """Issue a server certificate from the built-in CA and print the settings that use it."""
    from gateway.identity.ca import EmbeddedCA

    settings = load_settings()
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    hosts = tuple(args.hosts or ("localhost", "127.0.0.1"))
    msp = ca.enroll(args.org, args.name, "peer", hosts=hosts)
    cert = next(iter(sorted((msp / "signcerts").iterdir())))
    key = next(p for p in sorted((msp / "keystore").iterdir()) if p.name.endswith("_sk"))
    bundle = next(iter(sorted((msp / "tlscacerts").iterdir())))
    print(f"issued a TLS certificate for {', '.join(hosts)} by the CA of {args.org}")
    print("[gateway]")
    print(f'tls_cert_file = "{cert}"')
    print(f'tls_key_file = "{key}"')
    print(f"# clients verify the gateway with the CA bundle {bundle}")
    return 0


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
    from gateway.logs import configure_logging

    level = str(args.log_level or settings.gateway.log_level).upper()
    configure_logging(
        args.log_format or settings.gateway.log_format,
        level if isinstance(logging.getLevelName(level), int) else "INFO",
    )
    from gateway.app import create_app

    if settings.gateway.use_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            logging.getLogger(__name__).info("uvloop is not installed: using asyncio's loop")
    from gateway.web.tls import server_ssl_context

    ssl_context = server_ssl_context(settings.gateway)
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
    scheme = "https" if ssl_context is not None else "http"
    print(
        f"anchorline gateway on {scheme}://{settings.gateway.host}:{settings.gateway.port} "
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
        ssl_context=ssl_context,
    )
    return 0
