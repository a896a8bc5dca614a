"""Scale-out figures: one gateway vs two behind HAProxy, shared-store CPU cost, hot-channel
sequence contention, anchor-lease takeover. A benchmark, not a test: it asserts nothing.

Runs real processes on loopback (scripts/bench/loopback.py, shared with the scale-out
tests): a throwaway PostgreSQL, Redis, HAProxy, gateway processes pinned with taskset,
and the load generator (this process) pinned apart where the machine has the cores.
Every phase is bounded in events and time.

    PYTHONPATH=. .venv/bin/python scripts/bench/scaleout.py [--seconds 8] [--emitters 8]
        [--receivers 8] [--window 16] [--rate 0] [--driver python|node]
        [--phases mode,scale,commit,contention,takeover]

``--rate`` paces the emitters (events/s over all of them) instead of sending as fast as
the window allows: at one offered rate both modes carry the same events and deliveries
per second, so their CPU per event compares without the difference in throughput.

Figures (per phase, one JSON line each, then a summary):
- ``mode``: one gateway process, SQLite vs PostgreSQL (fan-out local vs Redis): acked
  events/s, ack p50/p99, delivered events/s, CPU ms per acknowledged event of the
  gateway and of PostgreSQL + Redis (from /proc, children included).
- ``scale``: one vs two gateway processes behind HAProxy on PostgreSQL + Redis.
- ``commit``: the store alone, one writer: CPU microseconds per commit of the writing
  process and of PostgreSQL, SQLite vs PostgreSQL (CPU seconds, robust to other load).
- ``contention``: writers (separate engines, as separate processes have) appending to
  one hot channel vs one channel each: commits/s, events/s, commit p99.
- ``takeover``: SIGKILL of the lease holder until another process holds it (3 runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gateway_events import NodeProcess  # noqa: E402
from loopback import Balancer, GatewayProcess, PgCluster, RedisServer, make_world  # noqa: E402
from nodejs import node_modules  # noqa: E402

from gateway.client.member import MemberClient  # noqa: E402
from gateway.events.model import NewEvent, SignedEvent  # noqa: E402
from gateway.store.engine import create_engine, migrate  # noqa: E402
from gateway.store.events import EventRepository  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def cpu_s(pid: int, children_of: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (and, with ``children_of``, of its children)."""
    total = 0.0
    pids = [pid]
    if children_of:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == pid:
                        pids.append(int(entry.name))
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def pin_self(core: int | None) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def drive(url: str, world: Any, args: argparse.Namespace, channel: str) -> dict[str, Any]:
    """Emitters emit with a window of in-flight events for ``args.seconds``; receivers
    count deliveries. Returns rates and latencies."""
    members = world.members
    emitters: list[MemberClient] = []
    receivers: list[MemberClient] = []
    for i in range(args.emitters + args.receivers):
        msp_dir, msp_id = members[i % len(members)]
        client = MemberClient.from_msp(url, msp_dir, msp_id)
        await client.login()
        await client.connect()
        await client.join(channel)
        (emitters if i < args.emitters else receivers).append(client)
    latencies: list[float] = []
    acked = errors = 0
    refused: dict[str, int] = {}  # error code (or exception type) -> count
    received = [0]
    stop = time.monotonic() + args.seconds

    async def count(client: MemberClient) -> None:
        async for _event in client.events():
            received[0] += 1

    async def emit(client: MemberClient) -> None:
        nonlocal acked, errors
        sem = asyncio.Semaphore(args.window)

        async def one(k: int) -> None:
            nonlocal acked, errors
            started = time.perf_counter()
            try:
                ack = await client.emit(channel, "bid", {"n": k})
            except Exception as exc:
                errors += 1
                kind = str(getattr(exc, "code", type(exc).__name__))
                refused[kind] = refused.get(kind, 0) + 1
                return
            finally:
                sem.release()
            if ack.ok:
                acked += 1
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
                kind = str((ack.error or {}).get("code"))
                refused[kind] = refused.get(kind, 0) + 1

        tasks = set()
        k = 0
        began = time.monotonic()
        while time.monotonic() < stop and k < args.max_events:
            if args.rate:
                # Paced (open loop): the k-th event at its time, so both modes carry
                # the same events/s and deliveries/s and their CPU per event compares.
                due = began + k * args.emitters / args.rate - time.monotonic()
                if due > 0:
                    await asyncio.sleep(due)
            await sem.acquire()
            task = asyncio.create_task(one(k))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        await asyncio.gather(*tasks)

    counters = [asyncio.create_task(count(r)) for r in receivers]
    began = time.monotonic()
    await asyncio.gather(*(emit(e) for e in emitters))
    elapsed = time.monotonic() - began
    await asyncio.sleep(0.5)  # deliveries in flight
    for task in counters:
        task.cancel()
    for client in emitters + receivers:
        with contextlib.suppress(Exception):
            await client.close()
    return {
        "acked": acked,
        "errors": errors,
        "refused": refused,
        "seconds": round(elapsed, 2),
        "acked_per_s": round(acked / elapsed, 1),
        "delivered_per_s": round(received[0] / elapsed, 1),
        "ack_p50_ms": round(_pct(latencies, 0.5) * 1000, 1),
        "ack_p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
    }


def _key_pem(msp_dir: Path) -> str:
    key_file = next(p for p in sorted((msp_dir / "keystore").iterdir()) if p.is_file())
    return key_file.read_text()


async def drive_node(
    url: str, world: Any, args: argparse.Namespace, channel: str
) -> dict[str, Any]:
    """The same load from ``node/load.mjs`` (two processes: receivers, emitters), a
    cheaper generator than Python clients: open loop at ``args.rate`` (or 1,500/s)
    events/s. Logins are made here, through ``url``; the tokens serve any gateway."""
    modules, why = node_modules()
    if modules is None:
        raise RuntimeError(f"--driver node: {why}")
    members = world.members
    tokens = []
    for i in range(args.emitters + 1):
        msp_dir, msp_id = members[i % len(members)]
        client = MemberClient.from_msp(url, msp_dir, msp_id)
        try:
            tokens.append((await client.login()).token)
        finally:
            await client.close()
    work = Path(tempfile.mkdtemp(prefix="scaleout-node-"))
    base = {"url": url, "node_modules": str(modules), "channel": channel, "pad": 0}
    emitters = [
        {"token": tokens[i], "key_pem": _key_pem(members[i % len(members)][0])}
        for i in range(args.emitters)
    ]
    recv = NodeProcess(
        {**base, "role": "receivers", "receivers": args.receivers, "receiver_token": tokens[-1]},
        work / "receivers.json",
        [],
    )
    emit: NodeProcess | None = None
    try:
        for proc in (recv,):
            if not proc.reply(120).get("ready"):
                raise RuntimeError("node receivers did not connect")
        emit = NodeProcess(
            {**base, "role": "emitters", "emitters": emitters}, work / "emitters.json", []
        )
        if not emit.reply(60).get("ready"):
            raise RuntimeError("node emitters did not connect")
        trial = f"t{time.monotonic_ns()}"
        recv.command({"cmd": "start", "trial": trial}, 30)
        rate = args.rate or 1500.0
        pids = [recv.proc.pid, emit.proc.pid]
        cpu0 = [cpu_s(p) for p in pids]
        sent = emit.command(
            {
                "cmd": "run",
                "trial": trial,
                "rate": rate,
                "duration_s": args.seconds,
                "max_events": args.max_events,
            },
            args.seconds + 120,
        )
        await asyncio.sleep(0.5)  # deliveries in flight
        got = recv.command({"cmd": "stop"}, 60)
        loadgen = sum(cpu_s(p) - c for p, c in zip(pids, cpu0, strict=True))
    finally:
        if emit is not None:
            emit.close()
        recv.close()
    seconds = float(sent.get("busy_s", args.seconds))
    acks = [float(x) / 1000 for x in sent.get("ack_samples_ms", [])]
    return {
        "driver": "node",
        "offered_per_s": rate,
        "acked": int(sent.get("acked", 0)),
        "errors": int(sent.get("errors", 0)),
        "refused": {str((sent.get("last_error") or {}).get("error", {}).get("code")): 1}
        if sent.get("errors")
        else {},
        "seconds": round(seconds, 2),
        "acked_per_s": round(int(sent.get("acked", 0)) / seconds, 1),
        "delivered_per_s": round(int(got.get("delivered", 0)) / seconds, 1),
        "ack_p50_ms": round(_pct(acks, 0.5) * 1000, 1),
        "ack_p99_ms": round(_pct(acks, 0.99) * 1000, 1),
        "node_loadgen_cpu_s": round(loadgen, 2),
    }


async def _drive(url: str, world: Any, args: argparse.Namespace, channel: str) -> dict[str, Any]:
    if args.driver == "node":
        return await drive_node(url, world, args, channel)
    return await drive(url, world, args, channel)


@contextlib.contextmanager
def gateways(
    folder: Path, world: Any, database_url: str, redis: RedisServer | None, count: int
) -> Iterator[list[GatewayProcess]]:
    settings = {
        "ANCHORLINE_HOME": str(world.home),
        "ANCHORLINE_GATEWAY_DATABASE_URL": database_url,
        "ANCHORLINE_GATEWAY_FANOUT": "redis" if redis else "local",
        "ANCHORLINE_GATEWAY_REDIS_URL": redis.url if redis else "",
        "ANCHORLINE_GATEWAY_SQLITE_SYNCHRONOUS": "NORMAL",
        "ANCHORLINE_ANCHORING_ENABLED": "false",
        "ANCHORLINE_LEDGER_KIND": "embedded",
        # The figures are costs per event: every event sent is stored and acknowledged.
        # With admission's wait rule a PostgreSQL descheduled for 40 ms on this shared
        # machine refused events whose parsing the CPU per acknowledged event then
        # carried; the queue bound still holds.
        "ANCHORLINE_GATEWAY_ADMISSION_MAX_QUEUE_WAIT_MS": "0",
        "ANCHORLINE_GATEWAY_ADMISSION_MAX_LOOP_LAG_MS": "0",
        "ANCHORLINE_GATEWAY_EMIT_IDENTITY_PER_S": "0",
        "ANCHORLINE_GATEWAY_EMIT_CONNECTION_PER_S": "0",
    }
    procs = [GatewayProcess(folder / f"g{i}", i, settings) for i in range(count)]
    try:
        for i, gw in enumerate(procs):
            gw.cpu = [i % CORES]
            gw.start(wait=False)
        for gw in procs:
            gw.wait_ready()
        yield procs
    finally:
        for gw in procs:
            gw.stop()


async def phase_mode(root: Path, pg: PgCluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for mode in ("sqlite", "postgresql"):
        folder = root / f"mode-{mode}"
        world = make_world(folder / "home", "", members=4)
        redis = RedisServer(folder / "redis") if mode == "postgresql" else None
        if redis:
            redis.start()
        url = f"sqlite:///{folder / 'events.db'}" if mode == "sqlite" else pg.new_database()
        try:
            with gateways(folder, world, url, redis, 1) as procs:
                pin_self(1 % CORES if CORES > 1 else None)
                gw = procs[0]
                before = (
                    cpu_s(gw.pid),
                    cpu_s(pg.pid or 0, True),
                    cpu_s(redis.pid) if redis else 0.0,
                    cpu_s(os.getpid()),
                )
                result = await _drive(gw.url, world, args, "bench")
                result["events_per_commit"] = round(result["acked"] / max(1, _commits(gw.url)), 1)
                after = (
                    cpu_s(gw.pid),
                    cpu_s(pg.pid or 0, True),
                    cpu_s(redis.pid) if redis else 0.0,
                    cpu_s(os.getpid()),
                )
        finally:
            if redis:
                redis.stop()
        n = max(1, result["acked"])
        gw_ms = (after[0] - before[0]) * 1000 / n
        store_ms = (
            ((after[1] - before[1]) + (after[2] - before[2])) * 1000 / n
            if mode != "sqlite"
            else 0.0
        )
        result.update(
            phase="mode",
            mode=mode,
            gateway_cpu_ms_per_event=round(gw_ms, 3),
            pg_redis_cpu_ms_per_event=round(store_ms, 3),
            total_cpu_ms_per_event=round(gw_ms + store_ms, 3),
            gateway_cpu_share=round((after[0] - before[0]) / result["seconds"], 2),
            loadgen_cpu_share=round(
                (after[3] - before[3] + result.get("node_loadgen_cpu_s", 0.0)) / result["seconds"],
                2,
            ),
            load_average=_load_average(),
        )
        print(json.dumps(result), flush=True)
        out.append(result)
    return out


async def phase_scale(root: Path, pg: PgCluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for count in (1, 2):
        folder = root / f"scale-{count}"
        world = make_world(folder / "home", "", members=4)
        redis = RedisServer(folder / "redis")
        redis.start()
        try:
            with gateways(folder, world, pg.new_database(), redis, count) as procs:
                balancer = Balancer(folder / "haproxy", [(g.name, g.port) for g in procs])
                balancer.start()
                others = {
                    "loadgen": (os.getpid(), False),
                    "haproxy": (balancer.pid, False),
                    "redis": (redis.pid, False),
                    "postgresql": (pg.pid or 0, True),
                }
                try:
                    before = [cpu_s(g.pid) for g in procs]
                    rest = {k: cpu_s(pid, kids) for k, (pid, kids) in others.items()}
                    result = await _drive(balancer.url, world, args, "bench")
                    after = [cpu_s(g.pid) for g in procs]
                    rest = {k: cpu_s(pid, kids) - rest[k] for k, (pid, kids) in others.items()}
                    rest["loadgen"] += result.get("node_loadgen_cpu_s", 0.0)
                finally:
                    balancer.stop()
        finally:
            redis.stop()
        seconds = result["seconds"]
        busy = [round((a - b) / seconds, 2) for a, b in zip(after, before, strict=True)]
        shares = {k: round(v / seconds, 2) for k, v in rest.items()}
        # The side that bound the figure: a process near a whole core (its pinning is
        # one core), or the machine when all together fill the cores.
        total = sum(busy) + sum(shares.values())
        result.update(
            phase="scale",
            gateways=count,
            gateway_cpu_share=busy,
            cpu_share=shares,
            machine_cpu_share=round(total / CORES, 2),
            bound=_bound(busy, shares, total),
            load_average=_load_average(),
        )
        print(json.dumps(result), flush=True)
        out.append(result)
    return out


async def phase_commit(root: Path, pg: PgCluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The store alone, one writer: CPU per commit of the writing process (its own CPU
    seconds, so other load on the machine does not count) and of PostgreSQL, for
    commits of ``args.commit_events`` events, SQLite against PostgreSQL. Throughput
    figures on a shared machine are noisy; CPU seconds per commit much less."""
    out = []
    count = args.commits
    for store in ("sqlite", "postgresql"):
        url = f"sqlite:///{root / 'commit.db'}" if store == "sqlite" else pg.new_database()
        engine = create_engine(url, "NORMAL")
        await migrate(engine)
        repo = EventRepository(engine, "NORMAL")
        size = args.commit_events
        for b in range(50):  # warm: connections, prepared statements, the first pages
            await repo.append([_event(f"warm-{b}-{i}", "bench") for i in range(size)])
        own0, pg0 = time.process_time(), cpu_s(pg.pid or 0, True)
        for b in range(count):
            await repo.append([_event(f"c-{b}-{i}", "bench") for i in range(size)])
        own, pg_s = time.process_time() - own0, cpu_s(pg.pid or 0, True) - pg0
        await repo.close()
        await engine.dispose()
        result = {
            "phase": "commit",
            "store": store,
            "events_per_commit": size,
            "commits": count,
            "writer_cpu_us_per_commit": round(own * 1e6 / count),
            "postgresql_cpu_us_per_commit": round(pg_s * 1e6 / count) if store != "sqlite" else 0,
            "load_average": _load_average(),
        }
        print(json.dumps(result), flush=True)
        out.append(result)
    return out


async def phase_contention(pg: PgCluster, args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    url = pg.new_database()
    setup = create_engine(url)
    await migrate(setup)
    await setup.dispose()
    for writers in (1, 2, 4):
        for hot in (True, False):
            engines = [create_engine(url) for _ in range(writers)]
            repos = [EventRepository(e) for e in engines]
            latencies: list[float] = []
            commits = [0]
            stop = time.monotonic() + min(args.seconds, 5)
            tag = f"w{writers}{'h' if hot else 'c'}"

            began = time.monotonic()
            await asyncio.gather(
                *(
                    _write(
                        r,
                        "hot" if hot else f"own{k}",
                        f"{tag}-{k}",
                        args.batch,
                        stop,
                        latencies,
                        commits,
                    )
                    for k, r in enumerate(repos)
                )
            )
            elapsed = time.monotonic() - began
            for engine in engines:
                await engine.dispose()
            result = {
                "phase": "contention",
                "writers": writers,
                "channels": "one hot" if hot else "one each",
                "batch": args.batch,
                "commits_per_s": round(commits[0] / elapsed, 1),
                "events_per_s": round(commits[0] * args.batch / elapsed, 1),
                "commit_p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
                "commit_p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
            }
            print(json.dumps(result), flush=True)
            out.append(result)
    return out


def _event(event_id: str, channel: str) -> NewEvent:
    """An event as the store receives it (the store checks no signature)."""
    body = f'{{"channel":"{channel}","client_ts":1,"id":"{event_id}","payload":1,"type":"t"}}'
    return NewEvent(
        SignedEvent(event_id, channel, "t", 1, 1, b"sig", body.encode()),
        signer="f" * 64,
        msp_id="Org1MSP",
        received_ms=1000,
    )


async def _write(
    repo: EventRepository,
    channel: str,
    prefix: str,
    size: int,
    stop: float,
    latencies: list[float],
    commits: list[int],
) -> None:
    b = 0
    while time.monotonic() < stop:
        batch = [_event(f"{prefix}-{b}-{i}", channel) for i in range(size)]
        started = time.perf_counter()
        await repo.append(batch)
        latencies.append(time.perf_counter() - started)
        commits[0] += 1
        b += 1


async def phase_takeover(root: Path, pg: PgCluster, args: argparse.Namespace) -> dict[str, Any]:
    folder = root / "takeover"
    world = make_world(folder / "home", "", members=2)
    settings = {
        "ANCHORLINE_HOME": str(world.home),
        "ANCHORLINE_GATEWAY_DATABASE_URL": pg.new_database(),
        "ANCHORLINE_LEDGER_KIND": "embedded",
    }
    procs = [GatewayProcess(folder / f"g{i}", i, settings) for i in range(2)]
    times = []
    try:
        for gw in procs:
            gw.start(wait=False)
        for gw in procs:
            gw.wait_ready()
        for _ in range(3):
            holder = _holder(procs, 20)
            killed = time.monotonic()
            holder.kill()
            _holder([g for g in procs if g is not holder], 20)
            times.append(time.monotonic() - killed)
            holder.start()
    finally:
        for gw in procs:
            gw.stop()
    result = {
        "phase": "takeover",
        "takeover_s": [round(t, 2) for t in times],
        "max_s": round(max(times), 2),
    }
    print(json.dumps(result), flush=True)
    return result


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _bound(gateways: list[float], others: dict[str, float], total: float) -> str:
    """Which side bound a run, from the CPU shares: a process at 85% of a core or more,
    else the machine's cores when the processes measured use 85% of them or more."""
    full = [f"gateway{i}" for i, share in enumerate(gateways) if share >= 0.85]
    full += [name for name, share in others.items() if share >= 0.85]
    if full:
        return ",".join(full)
    if total >= 0.85 * CORES:
        return "machine (all cores busy)"
    return "none at 85%: latency (window) or other load on the machine"


def _commits(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("anchorline_commits_total "):
                return int(float(line.split()[1]))
    return 0


def _holder(procs: list[GatewayProcess], timeout: float) -> GatewayProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for gw in procs:
            if gw.running and (gw.health() or {}).get("anchor_lease") == "held":
                return gw
        time.sleep(0.02)
    raise RuntimeError("no lease holder")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--emitters", type=int, default=8)
    parser.add_argument("--receivers", type=int, default=8)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered events/s over all emitters (0: as fast as the window allows)",
    )
    parser.add_argument("--batch", type=int, default=32, help="events per commit (contention)")
    parser.add_argument(
        "--driver",
        choices=("python", "node"),
        default="python",
        help="load generator: this process's Python clients, or node/load.mjs (cheaper)",
    )
    parser.add_argument("--max-events", type=int, default=50_000, help="per emitter, a bound")
    parser.add_argument("--commits", type=int, default=2000, help="commits (commit phase)")
    parser.add_argument("--commit-events", type=int, default=2, help="events per commit")
    parser.add_argument("--phases", default="mode,scale,commit,contention,takeover")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    pg = PgCluster()
    pg.start()
    root = Path(tempfile.mkdtemp(prefix="anchorline-scaleout-"))
    summary: dict[str, Any] = {"cores": CORES}
    try:
        if "mode" in phases:
            summary["mode"] = await phase_mode(root, pg, args)
        if "scale" in phases:
            summary["scale"] = await phase_scale(root, pg, args)
        if "commit" in phases:
            summary["commit"] = await phase_commit(root, pg, args)
        if "contention" in phases:
            summary["contention"] = await phase_contention(pg, args)
        if "takeover" in phases:
            summary["takeover"] = await phase_takeover(root, pg, args)
    finally:
        pg.stop()
    if "mode" in summary:
        sqlite, shared = summary["mode"]
        summary["shared_store_cpu_overhead"] = round(
            shared["total_cpu_ms_per_event"] / max(1e-9, sqlite["total_cpu_ms_per_event"]) - 1, 2
        )
    if "scale" in summary:
        one, two = summary["scale"]
        summary["two_vs_one"] = round(two["acked_per_s"] / max(1e-9, one["acked_per_s"]), 2)
    print("summary", json.dumps({k: v for k, v in summary.items() if not isinstance(v, list)}))


if __name__ == "__main__":
    asyncio.run(main())
