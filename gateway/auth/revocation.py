"""Live revocation: a CRL watcher that ends a revoked member's sessions within a second.

The trust store re-reads an MSP folder's ``crls/`` when its files change;
:class:`RevocationWatcher` makes that happen on a timer instead of on the
next login, so a revocation reaches members who are already connected:
every ``period_s`` (250 ms by default) it asks the source to refresh (one
directory scan per MSP, no inotify needed) and, when the CRL generation
moved, has the session service re-check every identity it served. Those
found revoked are refused from then on, and the service's identity
listeners (the hub) kick their connections.

Each gateway process runs its own watcher over the same MSP folders, so a
CRL revocation needs no message between processes; a logout does (the
hub's kicks go through the fan-out seam for that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol, runtime_checkable

from gateway.auth.sessions import SessionService

log = logging.getLogger(__name__)


@runtime_checkable
class RevocationSource(Protocol):
    """A verifier whose CRLs can change while it runs
    (:class:`~gateway.identity.certificates.TrustStore`)."""

    def refresh_crls(self) -> int:
        """Re-read changed CRLs; returns a generation that grows with every change."""
        ...


class RevocationWatcher:
    """Polls ``source`` and applies new revocations to ``sessions``."""

    def __init__(
        self, source: RevocationSource, sessions: SessionService, period_s: float = 0.25
    ) -> None:
        self._source = source
        self._sessions = sessions
        self._period_s = period_s
        self._generation: int | None = None
        #: Monotonic time of the last check that found a revoked identity (tests, logs).
        self.last_found_at: float | None = None

    def check(self) -> list[str]:
        """One round: refresh the CRLs and, if they changed, re-check the identities.

        Returns the fingerprints newly found revoked.
        """
        generation = self._source.refresh_crls()
        if generation == self._generation:
            return []
        first = self._generation is None
        self._generation = generation
        if first:
            # Identities served so far were verified against these very CRLs.
            return []
        found = self._sessions.check_revocations()
        if found:
            self.last_found_at = time.monotonic()
            log.info("certificate revocation: ended the sessions of %d identity(ies)", len(found))
        return found

    async def run(self) -> None:
        """Check every ``period_s`` until cancelled; a failing round is logged, not fatal."""
        while True:
            try:
                self.check()
            except Exception:  # a CRL being rewritten must not stop the watcher
                log.exception("checking CRLs for revocations failed")
            await asyncio.sleep(self._period_s)


__all__ = ["RevocationSource", "RevocationWatcher"]
