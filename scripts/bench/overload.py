"""Benchmark: the gateway above its capacity (issue 15, "Overload").

Starts our gateway and one room of ``--clients`` Node ``socket.io-client``
connections (2 emitters, the rest receivers) exactly as the side-by-side
benchmark does (``gateway_events.py``: subprocess on loopback, SQLite WAL,
synchronous=FULL, server and load generator pinned to separate cores), with
the emit budgets off, so what refuses is admission alone. It finds the
sustained capacity by the same climb and bisect (receive p99 ≤ 50 ms, nothing
lost), unless ``--capacity`` is given, then offers open-loop load at each
``--factors`` multiple of it for ``--duration`` seconds, each followed at once
by a recovery trial at half the capacity. Every trial is bounded in count and
time.

For each overload it prints the accepted events/s and their share of the
capacity (target ≥ 90%), the refusals and the last one (``Overloaded`` with
``retry_after``), ack p50/p99 of the accepted events as the load generator
saw them (target p99 ≤ 100 ms), receive p99, the gateway's RSS growth, the
admission refusals by rule (``/metrics``) and the recovery trial's ack p99.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench/overload.py [--clients 10]
        [--duration 10] [--factors 1.5,3] [--capacity N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "bench"))
sys.path.insert(0, str(REPO))

from gateway_events import (  # noqa: E402
    Scale,
    capacity_at,
    node_modules,
    pinning,
    raise_fd_limit,
    room,
    rss_kib,
    run_trial,
    scrape,
    start_server,
    stop_process,
)


def _f(x: object) -> str:
    return "-" if x is None else f"{float(x):.1f}"  # type: ignore[arg-type]


def _refused_by_rule(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    prefix = "anchorline_events_rejected_total{"
    return {
        k[len(prefix) : -1]: int(v - before.get(k, 0))
        for k, v in after.items()
        if k.startswith(prefix) and v - before.get(k, 0)
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=10, help="connections: 2 emit, the rest read")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per overload trial")
    ap.add_argument("--factors", default="1.5,3", help="multiples of the capacity to offer")
    ap.add_argument("--capacity", type=float, default=0.0, help="skip the capacity search")
    ap.add_argument("--trial-seconds", type=float, default=2.5, help="per capacity trial")
    ap.add_argument("--max-events", type=int, default=200_000, help="per overload trial")
    ap.add_argument(
        "--server-cores",
        choices=("one", "all"),
        default="one",
        help="one: the gateway on core 0 and the load generator on core 1, as side by "
        "side; all: the gateway unpinned (its signature worker may use the other core)",
    )
    ap.add_argument("--json", default="", help="write the raw results here")
    args = ap.parse_args()
    modules, why = node_modules()
    if modules is None:
        print(f"needs Node's socket.io-client: {why}", file=sys.stderr)
        return 2
    # Budgets off (inherited by the gateway process): what refuses here is admission.
    os.environ["ANCHORLINE_GATEWAY_EMIT_IDENTITY_PER_S"] = "0"
    os.environ["ANCHORLINE_GATEWAY_EMIT_CONNECTION_PER_S"] = "0"
    raise_fd_limit()
    pin_server, pin_load = pinning()
    if args.server_cores == "all":
        pin_server = []
    scale = Scale([args.clients], args.trial_seconds, 60.0, 9, 3, args.duration, 3.0)
    out: dict[str, Any] = {"clients": args.clients, "runs": []}
    with tempfile.TemporaryDirectory(prefix="anchorline-overload-") as tmp:
        server = start_server("ours", Path(tmp), modules, pin_server)
        try:
            with room(server, args.clients, modules, pin_load, 120) as rm:
                capacity = args.capacity
                if not capacity:
                    cap, row = capacity_at(rm, scale, print)
                    capacity = cap.rate
                    out["capacity_row"] = row
                out["capacity"] = capacity
                print(f"capacity {capacity:.0f} ev/s ({args.clients} clients)", flush=True)
                if not capacity:
                    return 1
                print(
                    f"{'offered':>8} {'accepted/s':>10} {'share':>6} {'refused':>8} "
                    f"{'ack p50':>8} {'ack p99':>8} {'recv p99':>9} {'RSS +MiB':>8} "
                    f"{'after ack p99':>13}  refusals by code"
                )
                for factor in (float(x) for x in args.factors.split(",")):
                    rate = capacity * factor
                    before, rss0 = scrape(server), rss_kib(server.pid)
                    t = run_trial(rm, rate, args.duration, args.max_events, settle_s=30)
                    after, rss1 = scrape(server), rss_kib(server.pid)
                    rec = run_trial(rm, capacity * 0.5, 3.0, args.max_events)
                    f, a = t.figures, rec.figures
                    run = {
                        "factor": factor,
                        "offered_per_s": rate,
                        "accepted_per_s": f.get("accepted_per_s"),
                        "accepted_of_capacity": (f.get("accepted_per_s") or 0) / capacity,
                        "ack_ms": f.get("ack_ms"),
                        "recv_ms": f.get("delivery_ms"),
                        "errors": f.get("errors"),
                        "last_error": f.get("last_error"),
                        "unacked": (f.get("sent") or 0) - (f.get("acked") or 0),
                        "lost_deliveries": (f.get("expected_deliveries") or 0)
                        - (f.get("delivered") or 0),
                        "rss_growth_mib": (rss1 - rss0) / 1024,
                        "refused_by_code": _refused_by_rule(before, after),
                        "server_cpu": f.get("server_cpu"),
                        "after_ack_ms": a.get("ack_ms"),
                        "after_recv_ms": a.get("delivery_ms"),
                        "why": t.why,
                    }
                    out["runs"].append(run)
                    ack, recv = run["ack_ms"] or {}, run["recv_ms"] or {}
                    print(
                        f"{factor:>7g}x {_f(run['accepted_per_s']):>10} "
                        f"{run['accepted_of_capacity']:>6.0%} {run['errors'] or 0:>8} "
                        f"{_f(ack.get('p50')):>8} {_f(ack.get('p99')):>8} "
                        f"{_f(recv.get('p99')):>9} {run['rss_growth_mib']:>8.1f} "
                        f"{_f((run['after_ack_ms'] or {}).get('p99')):>13}  "
                        f"{run['refused_by_code']} {json.dumps(run['last_error'])[:80]}",
                        flush=True,
                    )
        finally:
            stop_process(server.proc)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
