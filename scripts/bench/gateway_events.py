"""Benchmark: signed events through one gateway process (verify + persist + ack + broadcast).

Starts ``anchorline gateway run`` as a subprocess on loopback (SQLite WAL,
synchronous=FULL: every ack is durable), logs identities from the built-in CA
in, and drives it with the Node ``socket.io-client`` load generator
(``gateway_load.mjs``; Python's client cannot produce enough load on one core).
For 10, 100 and 500 connected clients it reports accepted events/s,
deliveries/s, and p50/p99 from emit to ack and from emit to receipt in
another client, at fixed offered rates and at saturation. By default the
emitters run in a Node process of their own, apart from the receivers, so an
ack is not measured behind hundreds of receivers' deliveries in one event
loop (``--one-load-process`` measures the old way); receipt latency then
compares the two processes' absolute clocks.

    .venv/bin/python scripts/bench/gateway_events.py [--quick] [--profile]

``--profile`` runs the gateway under cProfile and prints where its time went.
node_modules live outside the clone (``~/.cache/anchorline/bench-node``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gateway.client import MemberClient  # noqa: E402
from gateway.identity.ca import EmbeddedCA  # noqa: E402

# With --pin: gateway on one core, load generator on the other, as in
# shared/PERF-NOTES.md. Only on a quiet machine: pinned to a core that other
# work also wants, the gateway cannot be moved off it.
PIN_GATEWAY: list[str] = []
PIN_LOAD: list[str] = []
NODE_DIR = Path.home() / ".cache" / "anchorline" / "bench-node"
LOAD_JS = Path(__file__).with_name("gateway_load.mjs")


def ensure_node_modules() -> Path:
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        print(f"installing socket.io-client into {NODE_DIR} ...", flush=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(NODE_DIR),
                "socket.io-client@4.8",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_DIR / "node_modules"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(
    home: Path, port: int, profile: Path | None, db_url: str, anchoring: bool
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ANCHORLINE_HOME": str(home),
        "ANCHORLINE_CONFIG": str(home / "anchorline.toml"),
        "ANCHORLINE_GATEWAY_PORT": str(port),
        "ANCHORLINE_GATEWAY_RATE_LIMIT_IDENTITY_PER_MIN": "100000",
        "ANCHORLINE_GATEWAY_RATE_LIMIT_ADDRESS_PER_MIN": "100000",
        "ANCHORLINE_GATEWAY_SESSION_TTL_S": "3600",
        "ANCHORLINE_GATEWAY_DATABASE_URL": db_url,
        # The fast path alone unless asked: the trust path has its own benchmark.
        "ANCHORLINE_ANCHORING_ENABLED": "1" if anchoring else "0",
    }
    (home / "anchorline.toml").write_text("")
    cmd = [*PIN_GATEWAY, sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += ["-m", "gateway.cli.main", "gateway", "run", "--log-level", "WARNING"]
    with open(home / "gateway.log", "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"gateway did not start; see {home / 'gateway.log'}")


def stop_gateway(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def login(url: str, msp: Path, msp_id: str) -> str:
    client = MemberClient.from_msp(url, msp, msp_id)
    try:
        session = await client.login()
        return session.token
    finally:
        await client.close()


def key_pem(msp: Path) -> str:
    key_file = next(p for p in sorted((msp / "keystore").iterdir()) if p.is_file())
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def run_load(node_modules: Path, cfg: dict[str, object], work: Path) -> dict[str, object]:
    cfg_file = work / f"load-{time.monotonic_ns()}.json"
    cfg_file.write_text(json.dumps({**cfg, "node_modules": str(node_modules)}))
    timeout = float(cfg["duration_s"]) + 150  # type: ignore[arg-type]
    out = subprocess.run(
        [*PIN_LOAD, "node", str(LOAD_JS), str(cfg_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    line = (out.stdout.strip().splitlines() or ["{}"])[-1]
    result: dict[str, object] = json.loads(line)
    if "error" in result:
        result["stderr"] = out.stderr[-500:]
    return result


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_split_load(node_modules: Path, cfg: dict[str, object], work: Path) -> dict[str, object]:
    """Receivers in one Node process, emitters in another (the acks are not measured
    behind hundreds of receivers in one event loop); receipt latency from the two
    processes' absolute clocks."""
    cfg_file = work / f"load-recv-{time.monotonic_ns()}.json"
    cfg_file.write_text(json.dumps({**cfg, "role": "receivers", "node_modules": str(node_modules)}))
    receivers = subprocess.Popen(
        [*PIN_LOAD, "node", str(LOAD_JS), str(cfg_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receivers.stdout is not None and receivers.stdin is not None
        ready = json.loads(receivers.stdout.readline() or "{}")
        if not ready.get("ready"):
            receivers.kill()
            return {"error": f"receivers did not start: {ready}"}
        result = run_load(node_modules, {**cfg, "role": "emitters"}, work)
        # communicate() closes the receivers' stdin: their signal that sending is over.
        out, _ = receivers.communicate(timeout=60)
    finally:
        if receivers.poll() is None:
            receivers.kill()
            receivers.wait()
    if "error" in result:
        return result
    received = json.loads((out.strip().splitlines() or ["{}"])[-1])
    sent_at: dict[str, float] = result.pop("sent_at", {})  # type: ignore[assignment]
    latencies = [t - sent_at[i] for i, t in received.get("samples", []) if i in sent_at]
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    result["clients"] = int(received.get("receivers", 0)) + len(cfg["emitters"])  # type: ignore[arg-type]
    result["delivered"] = received.get("delivered", 0)
    result["deliveries_per_s"] = float(received.get("delivered", 0)) / seconds
    result["delivery_ms"] = {
        "p50": _percentile(latencies, 0.5),
        "p99": _percentile(latencies, 0.99),
        "max": _percentile(latencies, 1.0),
    }
    return result


def scrape(url: str) -> dict[str, float]:
    """The gateway's own cumulative figures from /metrics (ack latency buckets included)."""
    out: dict[str, float] = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def server_ack_quantile(before: dict[str, float], after: dict[str, float], q: float) -> str:
    """Upper bound (ms) of the histogram bucket holding quantile ``q`` of this run's acks."""
    prefix = 'anchorline_ack_latency_seconds_bucket{le="'
    buckets = sorted(
        (
            float("inf") if k[len(prefix) : -2] == "+Inf" else float(k[len(prefix) : -2]),
            after[k] - before.get(k, 0.0),
        )
        for k in after
        if k.startswith(prefix)
    )
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return "inf" if bound == float("inf") else f"<={bound * 1000:g}"
    return "-"


def fmt(x: object) -> str:
    return "-" if x is None else f"{float(x):.1f}"  # type: ignore[arg-type]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    ap.add_argument("--profile", action="store_true", help="profile the gateway (cProfile)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    ap.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    ap.add_argument("--clients", default="10,100,500", help="client counts, comma-separated")
    ap.add_argument("--emitters", type=int, default=2)
    ap.add_argument("--pin", action="store_true", help="pin gateway and load generator to cores")
    ap.add_argument(
        "--with-anchoring", action="store_true", help="run the trust path in the gateway too"
    )
    ap.add_argument(
        "--rates",
        default="",
        help="offered rates for every client count "
        "(events/s, 0 = saturation); default: a plan per client count",
    )
    ap.add_argument("--pad", type=int, default=120, help="payload padding (bytes)")
    ap.add_argument(
        "--one-load-process",
        action="store_true",
        help="emitters and receivers in one Node process (acks then wait behind deliveries)",
    )
    args = ap.parse_args()
    if args.pin and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        PIN_GATEWAY[:] = ["taskset", "-c", "0"]
        PIN_LOAD[:] = ["taskset", "-c", "1"]
    node_modules = ensure_node_modules()
    work = Path(tempfile.mkdtemp(prefix="anchorline-bench-"))
    ca = EmbeddedCA(work / "embedded" / "ca")
    emitter_dirs = [ca.enroll("Org1", f"emitter{i}", "member") for i in range(args.emitters)]
    receiver_dir = ca.enroll("Org2", "receiver", "member")
    port = free_port()
    db_url = args.database_url or f"sqlite:///{work / 'events.db'}"
    profile = work / "gateway.prof" if args.profile else None
    proc = start_gateway(work, port, profile, db_url, args.with_anchoring)
    url = f"http://127.0.0.1:{port}"
    try:
        emitters = [
            {"token": asyncio.run(login(url, d, "Org1MSP")), "key_pem": key_pem(d)}
            for d in emitter_dirs
        ]
        receiver_token = asyncio.run(login(url, receiver_dir, "Org2MSP"))
        plans: dict[int, list[int]] = {
            10: [1000, 2000, 3000, 4000, 0],
            100: [100, 200, 300, 0],
            500: [20, 40, 60, 0],
        }
        if args.quick:
            plans = {10: [3000, 0], 100: [250, 0], 500: [50, 0]}
        if args.rates:
            rates = [int(r) for r in args.rates.split(",")]
            plans = {c: rates for c in (10, 100, 500)}
        print(
            f"gateway pid {proc.pid}, database {db_url.split(':')[0]}, "
            f"{args.emitters} emitters, {args.duration:.0f} s per run; rate 0 = saturation "
            "(window of 64 outstanding events per emitter); load generator: "
            + ("one process" if args.one_load_process else "emitters and receivers apart")
        )
        print(
            f"{'clients':>7} {'rate':>6} {'accepted/s':>10} {'deliv/s':>9} "
            f"{'ack p50':>8} {'ack p99':>8} {'recv p50':>8} {'recv p99':>8} {'errors':>6} "
            f"{'gw ack p50':>10} {'gw ack p99':>10}"
        )
        results = []
        for clients in (int(c) for c in args.clients.split(",")):
            for rate in plans.get(clients, [0]):
                cfg = {
                    "url": url,
                    "channel": f"bench-{clients}-{rate}-{time.monotonic_ns()}",
                    "receivers": clients - args.emitters,
                    "receiver_token": receiver_token,
                    "emitters": emitters,
                    "rate": rate,
                    "max_events": 8000 if clients <= 10 else (1500 if clients <= 100 else 400),
                    "window": 64,
                    "duration_s": args.duration,
                    "pad": args.pad,
                }
                before = scrape(url)
                load = run_load if args.one_load_process else run_split_load
                r = load(node_modules, cfg, work)
                after = scrape(url)
                r["server_ack_p50_ms"] = server_ack_quantile(before, after, 0.5)
                r["server_ack_p99_ms"] = server_ack_quantile(before, after, 0.99)
                results.append({"clients": clients, "rate": rate, **r})
                if "error" in r:
                    print(f"{clients:>7} {rate:>6} error: {r['error']} {r.get('stderr', '')}")
                    continue
                ack, recv = r["ack_ms"], r["delivery_ms"]
                print(
                    f"{clients:>7} {rate:>6} {fmt(r['accepted_per_s']):>10} "
                    f"{fmt(r['deliveries_per_s']):>9} {fmt(ack['p50']):>8} "  # type: ignore[index]
                    f"{fmt(ack['p99']):>8} {fmt(recv['p50']):>8} "  # type: ignore[index]
                    f"{fmt(recv['p99']):>8} {r['errors']:>6} "
                    f"{r['server_ack_p50_ms']:>10} {r['server_ack_p99_ms']:>10}",
                    flush=True,
                )  # type: ignore[index]
        (work / "results.json").write_text(json.dumps(results, indent=1))
        print(f"raw results: {work / 'results.json'}")
    finally:
        stop_gateway(proc)
    if profile is not None and profile.exists():
        print("\nwhere the gateway's time went (cProfile, top 30 by own time):")
        stats = pstats.Stats(str(profile))
        stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
