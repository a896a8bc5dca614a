"""Benchmark: the gateway above its capacity (issue 15, "Overload").

Starts one gateway (as ``gateway_events.py`` does: subprocess on loopback,
SQLite WAL, synchronous=FULL), measures its capacity with a saturating
closed-loop run (a window of 64 outstanding events per emitter), then offers
open-loop load at each ``--factors`` multiple of it (default 1.5 and 3) for
``--duration`` seconds, each followed at once by a recovery run at half the
capacity. Every run is bounded in count (pre-signed events) and time.

For each run it prints accepted events/s (and its share of the capacity),
refusals and the last refusal's body (``Overloaded`` with ``retry_after``),
ack p50/p99 of the accepted events, receipt p99 in the receivers, the
gateway's peak RSS during the run and its slow-consumer disconnects.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench/overload.py [--duration 30] [--factors 1.5,3]

The recovery run starts about a second after the overload ends (the Node
load generator's start-up); its ack p99 is the "back to normal" figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "bench"))
sys.path.insert(0, str(REPO))

from gateway_events import (  # noqa: E402
    ensure_node_modules,
    free_port,
    key_pem,
    login,
    run_split_load,
    scrape,
    server_ack_quantile,
    start_gateway,
    stop_gateway,
)

from gateway.identity.ca import EmbeddedCA  # noqa: E402


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssWatch:
    """Samples a process's RSS every 100 ms in a thread; ``peak`` in KiB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, _rss_kib(self.pid))
            except OSError:
                return

    def __enter__(self) -> RssWatch:
        self.peak = _rss_kib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _f(x: object) -> str:
    return "-" if x is None else f"{float(x):.1f}"  # type: ignore[arg-type]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per overload run")
    ap.add_argument("--factors", default="1.5,3", help="multiples of the capacity to offer")
    ap.add_argument("--receivers", type=int, default=8)
    ap.add_argument("--emitters", type=int, default=2)
    ap.add_argument("--capacity", type=float, default=0.0, help="skip the capacity run")
    ap.add_argument("--json", default="", help="write the raw results here")
    args = ap.parse_args()
    node_modules = ensure_node_modules()
    work = Path(tempfile.mkdtemp(prefix="anchorline-overload-"))
    ca = EmbeddedCA(work / "embedded" / "ca")
    emitter_dirs = [ca.enroll("Org1", f"emitter{i}", "member") for i in range(args.emitters)]
    receiver_dir = ca.enroll("Org2", "receiver", "member")
    port = free_port()
    proc = start_gateway(work, port, None, f"sqlite:///{work / 'events.db'}", False)
    url = f"http://127.0.0.1:{port}"
    results: list[dict[str, object]] = []
    try:
        emitters = [
            {"token": asyncio.run(login(url, d, "Org1MSP")), "key_pem": key_pem(d)}
            for d in emitter_dirs
        ]
        receiver_token = asyncio.run(login(url, receiver_dir, "Org2MSP"))

        def run(label: str, rate: int, duration: float) -> dict[str, object]:
            cfg = {
                "url": url,
                "channel": f"ov-{label.replace(' ', '-')}-{time.monotonic_ns()}",
                "receivers": args.receivers,
                "receiver_token": receiver_token,
                "emitters": emitters,
                "rate": rate,
                "max_events": 12000,
                "window": 64,
                "duration_s": duration,
                "pad": 120,
            }
            before = scrape(url)
            with RssWatch(proc.pid) as rss:
                r = run_split_load(node_modules, cfg, work)
            after = scrape(url)
            r["server_ack_p99_ms"] = server_ack_quantile(before, after, 0.99)
            r["label"] = label
            r["peak_rss_mib"] = rss.peak / 1024
            r["slow_consumer_disconnects"] = after.get(
                "anchorline_slow_consumer_disconnects_total", 0
            ) - before.get("anchorline_slow_consumer_disconnects_total", 0)
            results.append(r)
            if "error" in r:
                print(f"{label:>14} error: {r['error']} {r.get('stderr', '')}", flush=True)
                return r
            ack, recv = r["ack_ms"], r["delivery_ms"]
            share = float(r["accepted_per_s"]) / capacity * 100 if capacity else 0.0  # type: ignore[arg-type]
            print(
                f"{label:>14} {rate:>7} {_f(r['accepted_per_s']):>10} {share:>5.0f}% "
                f"{r['errors']:>7} {_f(ack['p50']):>8} {_f(ack['p99']):>8} "  # type: ignore[index]
                f"{_f(recv['p99']):>9} {r['peak_rss_mib']:>7.0f} "  # type: ignore[index]
                f"{r['slow_consumer_disconnects']:>5.0f} {r['server_ack_p99_ms']:>10}  "
                f"{json.dumps(r.get('last_error'))[:90]}",
                flush=True,
            )
            return r

        capacity = args.capacity
        print(
            f"{'run':>14} {'offered':>7} {'accepted/s':>10} {'share':>6} {'refused':>7} "
            f"{'ack p50':>8} {'ack p99':>8} {'recv p99':>9} {'RSS MiB':>7} {'slow':>5} "
            f"{'gw ack p99':>10}  last refusal"
        )
        if not capacity:
            capacity = float(run("capacity", 0, 5.0)["accepted_per_s"])  # type: ignore[arg-type]
        for factor in (float(f) for f in args.factors.split(",")):
            run(f"{factor:g}x", int(capacity * factor), args.duration)
            run(f"after {factor:g}x", int(capacity * 0.5), 3.0)
    finally:
        stop_gateway(proc)
    if args.json:
        Path(args.json).write_text(json.dumps({"capacity": capacity, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
