"""Keys in a PKCS#11 token: signatures/s through SoftHSM2 against the in-process key, and
the gateway's sustained anchoring rate with its identity in the token.

    .venv/bin/python scripts/bench/pkcs11_sign.py [--seconds 3] [--events 3000]
        [--batch-events 10] [--clients 2] [--module /usr/lib/softhsm/libsofthsm2.so]

Everything runs in a temporary folder: a throwaway SoftHSM2 token (its own
SOFTHSM2_CONF), the embedded ledger, the gateway served on 127.0.0.1 with
members over Socket.IO. Part 1 signs SHA-256 digests for ``--seconds`` each
(ECDSA P-256, low-S DER) with a ``cryptography`` key and with the token's key,
one thread, then four threads sharing the token signer. Part 2 runs the same
load (``--events`` events from ``--clients`` members, at most 120 s) twice,
with the gateway's key in a keystore file and in the token, and reports the
events finalized per second and anchor transactions per second; small
batches (``--batch-events``) make the anchoring, not the intake, the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from gateway.config import Pkcs11Settings, Settings, load_settings  # noqa: E402
from gateway.identity.signing import EcdsaSigner, Signer  # noqa: E402

PIN = "bench-pin-1"
LABEL = "bench-token"
DEADLINE_S = 120.0


def make_token(root: Path, module: str) -> Pkcs11Settings:
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    # The library reads its configuration when first loaded: set it before that.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            LABEL,
            "--pin",
            PIN,
            "--so-pin",
            "so-" + PIN,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    return Pkcs11Settings(module=module, token_label=LABEL, pin_file=str(pin_file))


def rate(signer: Signer, seconds: float, threads: int = 1) -> float:
    digest = hashlib.sha256(b"anchorline benchmark").digest()
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def work(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            for _ in range(50):
                signer.sign(digest)
            n += 50
        counts[i] = n

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return sum(counts) / (time.monotonic() - started)


def sign_part(p11: Pkcs11Settings, seconds: float) -> None:
    from gateway.identity.pkcs11 import Token, TokenConfig

    token = Token.open(TokenConfig.from_settings(p11))
    try:
        in_token = token.generate_key("bench-sign")
        in_process = EcdsaSigner(ec.generate_private_key(ec.SECP256R1()))
        print(
            f"sign ECDSA P-256 (digest in, low-S DER out), {seconds:.0f} s each, "
            f"{os.cpu_count()} CPUs:"
        )
        for name, signer in (("in-process key", in_process), ("SoftHSM2 token", in_token)):
            one = rate(signer, seconds)
            four = rate(signer, seconds, threads=4)
            print(
                f"  {name:<16} {one:>9,.0f} signs/s (1 thread)   {four:>9,.0f} signs/s (4 threads)"
            )
    finally:
        token.close()


def settings_for(home: Path, p11: Pkcs11Settings, key_label: str, batch_events: int) -> Settings:
    base = load_settings({"ANCHORLINE_HOME": str(home), "PATH": os.environ.get("PATH", "")})
    return dataclasses.replace(
        base,
        ledger=dataclasses.replace(
            base.ledger, kind="embedded", embedded_contracts="chaincode.anchorline:CONTRACTS"
        ),
        gateway=dataclasses.replace(
            base.gateway,
            database_url=f"sqlite:///{home / 'events.db'}",
            sqlite_synchronous="NORMAL",
        ),
        anchoring=dataclasses.replace(
            base.anchoring, batch_max_events=batch_events, batch_max_ms=50
        ),
        pkcs11=dataclasses.replace(p11, key_label=key_label),
    )


async def anchoring_run(settings: Settings, events: int, clients: int) -> dict[str, float]:
    from aiohttp import web

    from gateway.app import create_app
    from gateway.client.member import MemberClient
    from gateway.identity.ca import EmbeddedCA

    ca = EmbeddedCA(settings.embedded_dir / "ca")
    members = [ca.enroll(f"Org{1 + i % 2}", f"m{i}", "member") for i in range(clients)]
    app = create_app(settings, verifier=ca.trust_store(), ledger="embedded")
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    conns = [MemberClient.from_msp(url, m, f"Org{1 + i % 2}MSP") for i, m in enumerate(members)]
    deadline = time.monotonic() + DEADLINE_S
    try:
        for c in conns:
            await c.login()
            await c.connect()
            await c.join("bench")
        per = events // clients
        started = time.monotonic()

        async def load(c: MemberClient) -> None:
            sem = asyncio.Semaphore(64)

            async def one(k: int) -> None:
                async with sem:
                    if time.monotonic() < deadline:
                        await c.emit("bench", "tick", {"k": k})

            await asyncio.gather(*(one(k) for k in range(per)))

        await asyncio.gather(*(load(c) for c in conns))
        acked = time.monotonic()
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = await conns[0].get("/anchoring/status")
            if status["channels"].get("bench", {}).get("finalized_upto", 0) >= per * clients:
                break
            await asyncio.sleep(0.05)
        done = time.monotonic()
        finalized = status["channels"].get("bench", {}).get("finalized_upto", 0)
        batches = int(status["channels"].get("bench", {}).get("anchored_batches", 0) or 0)
        return {
            "events": finalized,
            "seconds": done - started,
            "ingest_s": acked - started,
            "events_per_s": finalized / (done - started),
            "batches": batches,
            "anchors_per_s": batches / (done - started) if batches else float("nan"),
        }
    finally:
        for c in conns:
            await c.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--batch-events", type=int, default=10)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--module", default="/usr/lib/softhsm/libsofthsm2.so")
    args = parser.parse_args()
    if not Path(args.module).is_file() or shutil.which("softhsm2-util") is None:
        sys.exit(f"SoftHSM2 is missing ({args.module}); run scripts/setup")
    with tempfile.TemporaryDirectory(prefix="anchorline-pkcs11-") as tmp:
        root = Path(tmp)
        p11 = make_token(root / "hsm", args.module)
        sign_part(p11, args.seconds)
        from gateway.identity.pkcs11 import Token, TokenConfig

        token = Token.open(TokenConfig.from_settings(p11))
        try:
            token.generate_key("bench-gateway")
        finally:
            token.close()
        print(
            f"anchoring, embedded ledger: {args.events} events from {args.clients} members, "
            f"batches of at most {args.batch_events} events or 50 ms:"
        )
        for name, label in (("keystore file", ""), ("SoftHSM2 token", "bench-gateway")):
            home = root / (label or "file")
            settings = settings_for(home, p11, label, args.batch_events)
            r = asyncio.run(anchoring_run(settings, args.events, args.clients))
            print(
                f"  gateway key in {name:<15} {r['events']:>6.0f} events finalized in "
                f"{r['seconds']:5.1f} s: {r['events_per_s']:>7,.0f} events/s, "
                f"{r['anchors_per_s']:>6,.1f} anchors/s (ingest {r['ingest_s']:.1f} s)"
            )


if __name__ == "__main__":
    main()
