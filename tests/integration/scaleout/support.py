"""Helpers of the scale-out tests: a world (PostgreSQL database, embedded ledger's CA and
members) and its cluster, the ``anchorline`` command of this tree, load through the
balancer with counts, and checks on the store, the deliveries and the chain.

The processes themselves (PostgreSQL, Redis, HAProxy, gateways) are
``scripts/bench/loopback.py``'s, which the scale-out benchmark uses too."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from gateway.client.member import MemberClient
from gateway.events.signed import sign_event
from gateway.store.engine import create_engine
from gateway.store.models import anchors, batches, event_statuses, events
from scripts.bench.loopback import REPO, Cluster, World, clean_env, cluster
from scripts.bench.loopback import make_world as make_world


@contextlib.contextmanager
def world_cluster(
    folder: Path, world: World, processes: int, *, redis: bool = True
) -> Iterator[Cluster]:
    """``processes`` gateways of ``world`` (its database, home and test settings) behind
    HAProxy, with Redis unless ``redis`` is false."""
    with cluster(
        folder,
        database_url=world.database_url,
        home=world.home,
        processes=processes,
        redis=redis,
        settings=world.settings_env(),
    ) as c:
        yield c


def run_cli(
    home: Path, *argv: str, env: Mapping[str, str] | None = None, **gateway: str
) -> subprocess.CompletedProcess[str]:
    """``python -m gateway *argv`` of this tree in ``home``, with ``gateway`` as
    ``ANCHORLINE_GATEWAY_<NAME>`` settings, ``env`` added, and none of this process's
    ``ANCHORLINE_*`` variables."""
    settings = {f"ANCHORLINE_GATEWAY_{k.upper()}": v for k, v in gateway.items()}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env=clean_env({"ANCHORLINE_HOME": str(home), **settings, **(env or {})}),
        capture_output=True, text=True, timeout=90, cwd=REPO,
    )  # fmt: skip


class CountingClient(MemberClient):
    """A member client that records every event packet as it arrives (before the
    library's own de-duplication), so a test can tell a duplicate from a reorder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw: dict[str, list[int]] = {}
        self.own: dict[str, set[int]] = {}
        self.kinds: dict[str, int] = {}

    async def _on_event(self, name: str, data: Any) -> None:
        self.kinds[name] = self.kinds.get(name, 0) + 1
        if name == "event" and isinstance(data, dict):
            self.raw.setdefault(str(data.get("channel")), []).append(int(data.get("seq", -1)))
        await super()._on_event(name, data)


@contextlib.asynccontextmanager
async def clients(
    url: str, world: World, channel: str, count: int
) -> AsyncIterator[list[CountingClient]]:
    out: list[CountingClient] = []
    try:
        for i in range(count):
            msp_dir, msp_id = world.members[i % len(world.members)]
            client = CountingClient.from_msp(url, msp_dir, msp_id)
            assert isinstance(client, CountingClient)
            out.append(client)
            await client.login()
            await client.connect()
            await client.join(channel, after=0)
        yield out
    finally:
        for client in out:
            with contextlib.suppress(Exception):
                await client.close()


@dataclasses.dataclass
class Load:
    """What a load run did: events sent, acknowledged (with their seqs), refused."""

    sent: int = 0
    acked: dict[str, int] = dataclasses.field(default_factory=dict)  # id -> seq
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    retries: int = 0
    duplicates: int = 0


async def run_load(
    members: Sequence[CountingClient],
    channel: str,
    per_client: int,
    *,
    rate_per_client: float,
    load: Load,
    deadline_s: float = 120.0,
) -> Load:
    """Each client emits ``per_client`` events at about ``rate_per_client``/s, one at a
    time; an event that gets no ack or an error is sent again with the same id (the
    gateway's dedupe makes that safe) until acknowledged or ``deadline_s`` passes."""
    stop_at = time.monotonic() + deadline_s

    async def one(i: int, client: CountingClient) -> None:
        for k in range(per_client):
            event_id = f"c{i}-e{k}"
            # Signed once: a retry sends the same bytes, so the gateway answers a
            # duplicate of a stored event, never a conflict.
            signed = sign_event(
                client.signer, channel=channel, type="bid", payload={"n": k, "by": i},
                event_id=event_id,
            )  # fmt: skip
            load.sent += 1
            while time.monotonic() < stop_at:
                try:
                    if not client.connected:
                        await asyncio.sleep(0.05)
                        continue
                    ack = await client.emit_signed(signed)
                except Exception as exc:  # refused, timed out (no ack: the gateway died), cut
                    key = getattr(exc, "code", type(exc).__name__)
                    load.errors[str(key)] = load.errors.get(str(key), 0) + 1
                    load.retries += 1
                    await asyncio.sleep(0.05)
                    continue
                if ack.ok and ack.seq is not None:
                    if ack.status == "duplicate":
                        load.duplicates += 1  # stored by an attempt whose ack was lost
                    load.acked[event_id] = ack.seq
                    client.own.setdefault(channel, set()).add(ack.seq)
                    break
                code = str((ack.error or {}).get("code"))
                load.errors[code] = load.errors.get(code, 0) + 1
                load.retries += 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0 / rate_per_client)

    await asyncio.gather(*(one(i, c) for i, c in enumerate(members)))
    return load


@dataclasses.dataclass
class StoreView:
    stored: int
    seqs: list[int]
    finalized: int
    batches: list[tuple[int, int, int, bytes, bytes, str]]  # number, first, last, root, prev, state
    anchor_tx: list[str | None]


async def store_view(database_url: str, channel: str) -> StoreView:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            seqs = [
                int(r[0])
                for r in await conn.execute(
                    select(events.c.seq).where(events.c.channel == channel).order_by(events.c.seq)
                )
            ]
            finalized = int(
                (
                    await conn.execute(
                        select(func.count()).where(
                            event_statuses.c.channel == channel,
                            event_statuses.c.status == "finalized",
                        )
                    )
                ).scalar()
                or 0
            )
            rows = (
                await conn.execute(
                    select(
                        batches.c.number,
                        batches.c.first_seq,
                        batches.c.last_seq,
                        batches.c.root,
                        batches.c.prev_root,
                        batches.c.state,
                    )
                    .where(batches.c.channel == channel)
                    .order_by(batches.c.number)
                )
            ).all()
            txs = [
                r[0]
                for r in await conn.execute(
                    select(anchors.c.tx_id)
                    .select_from(anchors.join(batches, anchors.c.batch_id == batches.c.id))
                    .where(batches.c.channel == channel)
                    .order_by(batches.c.number)
                )
            ]
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    return StoreView(
        len(seqs),
        seqs,
        finalized,
        [(int(a), int(b), int(c), bytes(d), bytes(e), str(f)) for a, b, c, d, e, f in rows],
        txs,
    )


def check_chain(view: StoreView) -> None:
    """Batches 1, 2, 3… cover seqs 1..n without gap or overlap, each chained to the last."""
    expect_first, prev = 1, bytes(32)
    for number, (n, first, last, root, prev_root, _state) in enumerate(view.batches, start=1):
        assert n == number, f"batch numbers jump to {n} after {number - 1}"
        assert first == expect_first, f"batch {n} starts at {first}, expected {expect_first}"
        assert prev_root == prev, f"batch {n} does not chain to batch {n - 1}"
        expect_first, prev = last + 1, root


async def wait_for(predicate: Any, timeout: float, what: str, period: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(period)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def check_accounting(load: Load, view: StoreView, *, finalized: bool = True) -> None:
    """Every event sent was acknowledged once and stored once, sequences gap-free, the
    acks' seqs exactly the stored ones; with ``finalized``, all anchored and the batch
    chain unbroken."""
    assert len(load.acked) == load.sent, (len(load.acked), load.sent)
    assert view.seqs == list(range(1, view.stored + 1))  # gap-free
    assert sorted(load.acked.values()) == view.seqs  # zero lost, zero duplicate
    if finalized:
        assert view.finalized == view.stored
        check_chain(view)


async def acked_at_least(load: Load, count: int) -> bool:
    return len(load.acked) >= count


async def all_delivered(members: Sequence[CountingClient], channel: str, total: int) -> bool:
    """Every member has seen ``total`` events of ``channel`` (its own ones included)."""
    return all(
        len(set(m.raw.get(channel, [])) | m.own.get(channel, set())) >= total for m in members
    )


async def finalized_view(url: str, channel: str, count: int) -> StoreView | None:
    """The store's view of ``channel`` once ``count`` events are stored and finalized."""
    view = await store_view(url, channel)
    return view if view.finalized >= count and view.stored >= count else None
