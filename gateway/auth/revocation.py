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

The same rounds pick up new organizations: given an :class:`MspSource` (the
network profile's orgs, or the built-in CA's), a change of its cheap stamp
makes the watcher add the MSP folders the trust store does not know yet,
so the members of an org added to the running network can log in without
a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path
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


@runtime_checkable
class ExtensibleTrust(Protocol):
    """A trust store that can take more MSPs while it runs (``TrustStore``)."""

    @property
    def msp_ids(self) -> tuple[str, ...]: ...

    def add_msp_dir(self, msp_id: str, folder: Path | str) -> None: ...


class MspSource(Protocol):
    """Where the organizations the gateway trusts are listed."""

    def stamp(self) -> object:
        """Cheap to compute (a stat or a directory scan); changes when the list may have."""
        ...

    def folders(self) -> Mapping[str, Path]:
        """MSP id → the org's MSP folder (``cacerts/``, ``crls/``)."""
        ...


class RevocationWatcher:
    """Polls ``source`` and applies new revocations to ``sessions``; with ``msps`` (and a
    ``source`` that is an :class:`ExtensibleTrust`), adds the MSPs of new orgs too."""

    def __init__(
        self,
        source: RevocationSource,
        sessions: SessionService,
        period_s: float = 0.25,
        *,
        msps: MspSource | None = None,
    ) -> None:
        self._source = source
        self._sessions = sessions
        self._period_s = period_s
        self._generation: int | None = None
        self._msps = msps
        self._msp_stamp: object = msps.stamp() if msps is not None else None
        #: Monotonic time of the last check that found a revoked identity (tests, logs).
        self.last_found_at: float | None = None

    def check(self) -> list[str]:
        """One round: refresh the CRLs and, if they changed, re-check the identities.

        Returns the fingerprints newly found revoked.
        """
        self.add_new_orgs()
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

    def add_new_orgs(self) -> list[str]:
        """Trust the MSPs the source lists and the store lacks; returns their ids."""
        if self._msps is None or not isinstance(self._source, ExtensibleTrust):
            return []
        stamp = self._msps.stamp()
        if stamp == self._msp_stamp:
            return []
        known = set(self._source.msp_ids)
        added = []
        for msp_id, folder in self._msps.folders().items():
            if msp_id not in known:
                self._source.add_msp_dir(msp_id, folder)
                added.append(msp_id)
        # Only once every folder was read: a half-written org is retried next round.
        self._msp_stamp = stamp
        if added:
            log.info("trusting new organization(s): %s", ", ".join(added))
        return added

    async def run(self) -> None:
        """Check every ``period_s`` until cancelled; a failing round is logged, not fatal."""
        while True:
            try:
                self.check()
            except Exception:  # a CRL being rewritten must not stop the watcher
                log.exception("checking CRLs for revocations failed")
            await asyncio.sleep(self._period_s)


__all__ = ["ExtensibleTrust", "MspSource", "RevocationSource", "RevocationWatcher"]
