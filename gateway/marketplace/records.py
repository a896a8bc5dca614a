"""What the marketplace keeps of an auction across restarts, and the store it keeps it in.

The gateway's database holds one :class:`AuctionRecord` per auction (the
store: :class:`gateway.store.auctions.AuctionRepository`, behind the
:class:`AuctionStore` protocol so this package loads no SQLAlchemy). Bids are
not copied: they are events, read back from the event store when an auction
is rebuilt.

States, in order, each written before the step it announces is done:

- ``opening`` — the row exists, the seller's ``auction.open`` event may not be
  stored yet (a gateway that died here left an open that was never acknowledged);
- ``open`` — the open event is stored at ``open_seq``;
- ``closing`` — the winner is decided and the close event chosen
  (:class:`PlannedEvent`: its id, ``client_ts`` and payload), not yet stored;
- ``closed`` — the close event is stored at ``close_seq``.

Moving ``open`` → ``closing`` is a conditional update (:meth:`AuctionStore.begin_close`),
so exactly one close is decided per auction, by one process, once.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Literal, Protocol

from gateway.marketplace.auctions import Party, Terms

RecordState = Literal["opening", "open", "closing", "closed"]
SETTLEMENT_AWAITING: Final = "Awaiting"
#: Settlement states a listing may filter on: no transaction yet, then the chaincode's.
SETTLEMENT_STATES: Final = (SETTLEMENT_AWAITING, "Proposed", "Accepted", "Settled")


@dataclasses.dataclass(frozen=True)
class PlannedEvent:
    """An event the gateway will sign and store, fixed before it is first published.

    Publishing it again signs the same id, ``client_ts`` and payload, so the
    canonical bytes are the same and the event store answers ``duplicate``
    instead of storing a second copy.
    """

    event_id: str
    client_ts: int
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.event_id, "client_ts": self.client_ts, "payload": self.payload}

    @classmethod
    def from_json(cls, value: object) -> PlannedEvent:
        if not isinstance(value, dict):
            raise ValueError("a planned event is an object")
        event_id, client_ts, payload = value.get("id"), value.get("client_ts"), value.get("payload")
        if not isinstance(event_id, str) or not isinstance(client_ts, int):
            raise ValueError("a planned event needs a text id and an integer client_ts")
        if not isinstance(payload, dict):
            raise ValueError("a planned event's payload is an object")
        return cls(event_id, client_ts, payload)


@dataclasses.dataclass(frozen=True)
class Winner:
    """The decided winner as the record keeps it (the bid itself is an event)."""

    seq: int
    buyer: Party
    amount: int


@dataclasses.dataclass(frozen=True)
class AuctionRecord:
    """One auction as stored; see the module docstring for ``state``."""

    terms: Terms
    seller: Party
    open_event_id: str
    state: RecordState
    updated_ms: int
    open_seq: int | None = None
    winner: Winner | None = None
    close_event: PlannedEvent | None = None
    close_seq: int | None = None
    # {settlement_id, state, tx_id, block_number, by, history: [step, ...]}; each step
    # also carries the event (``event``: PlannedEvent JSON) and, once stored, its ``seq``.
    settlement: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class BrokenRecord:
    """A stored row that could not be read back: its channel's state is unknown."""

    auction_id: str
    channel: str
    reason: str


class AuctionStore(Protocol):
    """Where auctions are kept; every method may raise
    :class:`~gateway.events.errors.StoreUnavailable` when the database is unreachable."""

    async def add(self, record: AuctionRecord) -> bool:
        """Insert an ``opening`` record; False when the id or the channel is taken."""
        ...

    async def mark_open(self, record: AuctionRecord, open_seq: int, now_ms: int) -> None:
        """The open event is stored at ``open_seq`` (re-inserts a row removed meanwhile)."""
        ...

    async def remove(self, auction_id: str) -> None:
        """Forget an auction whose open was never stored."""
        ...

    async def load_all(self) -> list[AuctionRecord | BrokenRecord]:
        """Every stored auction, in auction id order."""
        ...

    async def by_channel(self, channel: str) -> AuctionRecord | BrokenRecord | None: ...

    async def begin_close(
        self, auction_id: str, winner: Winner | None, event: PlannedEvent, now_ms: int
    ) -> bool:
        """``open`` → ``closing`` with the decided winner and close event; False when
        the auction was not ``open`` (another close was decided first)."""
        ...

    async def finish_close(self, auction_id: str, close_seq: int, now_ms: int) -> None:
        """``closing`` → ``closed``: the close event is stored at ``close_seq``."""
        ...

    async def set_settlement(
        self, auction_id: str, settlement: dict[str, Any], now_ms: int
    ) -> None: ...

    async def settlements(
        self, *, state: str | None, party: str | None, after: str | None, limit: int
    ) -> list[AuctionRecord | BrokenRecord]:
        """Closed auctions with a winner, by auction id after ``after``; ``state`` one
        of :data:`SETTLEMENT_STATES`; ``party`` a fingerprint that is buyer or seller."""
        ...


__all__ = [
    "SETTLEMENT_AWAITING",
    "SETTLEMENT_STATES",
    "AuctionRecord",
    "AuctionStore",
    "BrokenRecord",
    "PlannedEvent",
    "RecordState",
    "Winner",
]
