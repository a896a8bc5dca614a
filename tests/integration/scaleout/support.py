"""Helpers of the scale-out tests: a world (PostgreSQL database, embedded ledger's CA and
members), load through the balancer with counts, and checks on the store and the chain."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from gateway.client.member import MemberClient
from gateway.config import load_settings
from gateway.events.signed import sign_event
from gateway.identity.ca import EmbeddedCA
from gateway.ledger.embedded import EmbeddedLedger, config_from_settings
from gateway.store.engine import create_engine
from gateway.store.models import anchors, batches, event_statuses, events


@dataclasses.dataclass
class World:
    home: Path
    database_url: str
    members: list[tuple[Path, str]]

    def settings_env(self, **extra: str) -> dict[str, str]:
        return {
            "ANCHORLINE_LEDGER_KIND": "embedded",
            "ANCHORLINE_ANCHORING_BATCH_MAX_MS": "50",
            "ANCHORLINE_ANCHORING_BATCH_MAX_EVENTS": "200",
            "ANCHORLINE_ANCHORING_RETRY_MAX_MS": "500",
            **extra,
        }


def make_world(home: Path, database_url: str, members: int = 4) -> World:
    """The embedded ledger's CA and members (the ledger is closed again: gateways open it)."""
    settings = load_settings({"ANCHORLINE_HOME": str(home)})
    ledger = EmbeddedLedger.open(config_from_settings(settings))
    ledger.close_sync()
    ca = EmbeddedCA(settings.embedded_dir / "ca")
    orgs = ("Org1", "Org2")
    return World(
        home,
        database_url,
        [
            (ca.enroll(orgs[i % 2], f"member{i}", "member"), f"{orgs[i % 2]}MSP")
            for i in range(members)
        ],
    )


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
