"""Several peers behind one client: own organisation first, failover when one is down.

- :class:`Endpoint` — where a peer's Gateway service listens and how to trust it.
- :func:`own_org_first` — order endpoints so the client's own organisation's
  peers come first (stable otherwise).
- :class:`Failover` — runs a call on the first transport that answers. A
  transport that fails with ``UNAVAILABLE`` (the peer is down or unreachable)
  is put aside for a short cool-down and the call moves on to the next; any
  other error is the peer's answer and is returned to the caller. When every
  transport is down, the last ``UNAVAILABLE`` error is raised. With
  ``spread=True`` successive calls start at successive peers (load sharing).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from gateway.ledger.transport import GatewayTransport, RpcError, StatusCode

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A peer's Gateway service: ``host:port``, its org, and its TLS trust."""

    address: str
    msp_id: str
    tls_root_certs: bytes | None = None
    server_name_override: str | None = None


def own_org_first(endpoints: Sequence[Endpoint], msp_id: str) -> list[Endpoint]:
    """The endpoints of ``msp_id`` first, the others after, each group in the given order."""
    return sorted(endpoints, key=lambda e: e.msp_id != msp_id)


class Failover:
    """Transports in order of preference, with failover on ``UNAVAILABLE``."""

    def __init__(
        self,
        transports: Sequence[GatewayTransport],
        *,
        cooldown_s: float = 2.0,
        spread: bool = False,
    ) -> None:
        if not transports:
            raise ValueError("at least one transport is needed")
        self._transports = list(transports)
        self._cooldown_s = cooldown_s
        # Spread: successive calls start at successive peers (load sharing), still
        # failing over in order; otherwise every call prefers the first.
        self._spread = spread
        self._turn = 0
        self._down_until: dict[int, float] = {}
        self.failovers = 0

    @property
    def transports(self) -> tuple[GatewayTransport, ...]:
        return tuple(self._transports)

    def candidates(self) -> list[GatewayTransport]:
        """Transports to try, in order: those not cooling down, then the rest."""
        now = time.monotonic()
        order = self._transports
        if self._spread:
            self._turn = (self._turn + 1) % len(order)
            order = order[self._turn :] + order[: self._turn]
        up = [t for t in order if self._down_until.get(self._transports.index(t), 0.0) <= now]
        down = [t for t in order if self._down_until.get(self._transports.index(t), 0.0) > now]
        return up + down

    def mark_down(self, transport: GatewayTransport) -> None:
        index = self._transports.index(transport)
        self._down_until[index] = time.monotonic() + self._cooldown_s

    def mark_up(self, transport: GatewayTransport) -> None:
        self._down_until.pop(self._transports.index(transport), None)

    async def call(self, operation: Callable[[GatewayTransport], Awaitable[T]]) -> T:
        """``operation`` on the first transport that is reachable."""
        last: RpcError | None = None
        for transport in self.candidates():
            try:
                result = await operation(transport)
            except RpcError as exc:
                if exc.status != StatusCode.UNAVAILABLE:
                    raise
                self.mark_down(transport)
                self.failovers += 1
                last = exc
                continue
            if self._down_until:
                self.mark_up(transport)
            return result
        assert last is not None
        raise last

    async def close(self) -> None:
        for transport in self._transports:
            await transport.close()
