"""The seam through which the trust path pushes status changes to subscribers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol


@dataclasses.dataclass(frozen=True, slots=True)
class StatusChange:
    """Events ``seqs`` of ``channel`` reached ``status`` (confirmed or finalized)."""

    channel: str
    seqs: Sequence[int]
    status: str
    tx_id: str | None = None
    block_number: int | None = None
    batch_id: int | None = None


class StatusPublisher(Protocol):
    """Implemented by the Socket.IO hub; the anchoring package calls it after storing."""

    def publish_status(self, change: StatusChange) -> None: ...
