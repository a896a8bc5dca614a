"""On-chain channel grants, plugged into the gateway's authorizer.

:class:`OnChainGrantPolicy` answers for channels matching the premium
pattern (``premium-*`` by default) by evaluating the access contract's
``CheckAccess(channel, msp_id, fingerprint)`` with the gateway's own
identity; the :class:`~gateway.auth.authorizer.Authorizer` caches the answer
for its TTL. :func:`follow_grants` reads the chaincode's ``AccessRevoked``
and ``AccessGranted`` events and invalidates the cached answers of the
subject at once, which makes the hub re-check and remove a member who lost
access from the room (in well under a second after the block commits).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from gateway.auth.authorizer import Action, Decision
from gateway.auth.principal import Principal
from gateway.errors import AnchorlineError
from gateway.ledger.contract import Contract
from gateway.ledger.errors import EvaluateError, LedgerTimeout, LedgerUnavailable
from gateway.ledger.network import Network

log = logging.getLogger(__name__)

ACCESS_CONTRACT: Final = "access"
GRANT_EVENTS: Final = frozenset(("AccessRevoked", "AccessGranted"))

Invalidate = Callable[[str | None, str], Awaitable[None]]


class OnChainGrantPolicy:
    """Premium channels need a live grant from the access contract (or the owning org)."""

    def __init__(self, contract: Contract, pattern: str, emit_roles: frozenset[str]) -> None:
        self._contract = contract
        self._pattern = pattern
        self._emit_roles = emit_roles

    def governs(self, channel: str) -> bool:
        return fnmatch.fnmatchcase(channel, self._pattern)

    async def decide(self, principal: Principal, channel: str, action: Action) -> Decision:
        if not self.governs(channel):
            return Decision.ABSTAIN
        try:
            raw = await self._contract.evaluate(
                "CheckAccess", channel, principal.msp_id, principal.fingerprint, timeout=5.0
            )
            answer = json.loads(raw)
        except (LedgerTimeout, LedgerUnavailable) as exc:
            # Fail closed: without the ledger's word a premium room stays shut.
            log.warning("CheckAccess %s unavailable: %s", channel, exc)
            return Decision.DENY
        except EvaluateError as exc:
            # An unregistered premium channel is closed to everyone.
            log.info("CheckAccess %s for %s: %s", channel, principal.fingerprint[:12], exc)
            return Decision.DENY
        except (AnchorlineError, ValueError) as exc:
            # Fail closed: without the ledger's word a premium room stays shut.
            log.warning("CheckAccess %s unavailable: %s", channel, exc)
            return Decision.DENY
        if not isinstance(answer, dict) or answer.get("allowed") is not True:
            return Decision.DENY
        if action is Action.WRITE and principal.role not in self._emit_roles:
            return Decision.DENY
        return Decision.ALLOW


async def follow_grants(
    network: Network, chaincode: str, invalidate: Invalidate, ready: asyncio.Event | None = None
) -> None:
    """Invalidate cached answers for each grant change on the ledger, forever.

    Starts at the next committed block. ``invalidate(fingerprint, channel)``
    gets ``None`` as fingerprint for an MSP-wide grant (every member of that org).
    """
    stream = network.chaincode_events(chaincode)
    if ready is not None:
        ready.set()
    try:
        async for event in stream:
            if event.event_name not in GRANT_EVENTS:
                continue
            try:
                record = json.loads(event.payload)
                channel = str(record["channel"])
                subject = record["subject"]
                fingerprint = str(subject["value"]) if subject["kind"] == "fingerprint" else None
            except (ValueError, KeyError, TypeError):
                log.warning(
                    "ignoring malformed %s event in tx %s", event.event_name, event.transaction_id
                )
                continue
            log.info(
                "%s on %s for %s (block %d): re-checking members",
                event.event_name,
                channel,
                fingerprint or "an org",
                event.block_number,
            )
            await invalidate(fingerprint, channel)
    finally:
        await stream.aclose()
