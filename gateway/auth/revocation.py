"""Live revocation: a CRL watcher that ends a revoked member's sessions within a second.

The trust store re-reads an MSP folder's ``crls/`` when its files change;
:class:`RevocationWatcher` makes that happen on a timer instead of on the
next login, so a revocation reaches members who are already connected:
every ``period_s`` (250 ms by default) it asks the source to refresh (one
directory scan per MSP, no inotify needed) and, when the CRL generation
moved, has the session service re-check every identity it served. Those
found revoked are refused from then on, and the service's identity
listeners (the hub) kick their connections.

The same rounds take the CRLs of the channel configuration (each org's MSP
``revocation_list``, where ``anchorline network revoke`` publishes them for
Fabric's peers) from a :class:`ChannelCrls` source
(:class:`~gateway.ledger.config_watch.ChannelConfigWatch` on Fabric, which
follows the config blocks): a new configuration is handed to the trust
store (``set_channel_crls``), which moves the same generation, so a
channel-config CRL ends sessions exactly as a folder CRL does. The embedded
ledger has no such source: its channel configuration is block 0, written once
with the orgs' CA certificates and never updated, and its peers honour the
built-in CA's ``crls/`` folders, which this watcher reads already.

Each gateway process runs its own watcher over the same MSP folders (and
the same channel), so a CRL revocation needs no message between processes.
A logout does: :class:`SessionEndFollower` reads the store's
``session_ends`` by increasing id every 250 ms (a primary-key range scan),
so a session ended on another process is refused here, and its connections
here kicked, within about 250 ms plus a query; with Redis the hub's kick
through the fan-out usually gets there first, and the follower's read of the
same end is then a no-op.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from gateway.auth.sessions import SessionService
from gateway.clock import Clock, now_ms
from gateway.errors import AnchorlineError
from gateway.store.auth import AuthRepository

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


@runtime_checkable
class ChannelCrlTrust(Protocol):
    """A trust store that honours CRLs from the channel configuration (``TrustStore``)."""

    def set_channel_crls(self, msp_id: str, crls: Iterable[bytes]) -> bool: ...


class ChannelCrls(Protocol):
    """Where the channel configuration's CRLs are read (``ChannelConfigWatch``)."""

    def revocation_lists(self) -> tuple[int, Mapping[str, Sequence[bytes]]]:
        """``(version, {msp_id: [CRL, ...]})``: the version grows with each new configuration."""
        ...


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
        self._channel: ChannelCrls | None = None
        self._channel_version = 0
        self._channel_msps: set[str] = set()
        #: Monotonic time of the last check that found a revoked identity (tests, logs).
        self.last_found_at: float | None = None

    def check(self) -> list[str]:
        """One round: refresh the CRLs and, if they changed, re-check the identities.

        Returns the fingerprints newly found revoked.
        """
        self.add_new_orgs()
        self.apply_channel_crls()
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

    def follow_channel(self, channel: ChannelCrls) -> None:
        """Honour the CRLs of the channel configuration ``channel`` reads, from the next
        round on (needs a ``source`` that is a :class:`ChannelCrlTrust`)."""
        self._channel = channel

    def apply_channel_crls(self) -> bool:
        """Hand a channel configuration read since the last round to the trust store;
        True when one was. An MSP whose CRL cannot be parsed keeps its previous ones."""
        if self._channel is None or not isinstance(self._source, ChannelCrlTrust):
            return False
        version, lists = self._channel.revocation_lists()
        if version == self._channel_version:
            return False
        # An org whose MSP no longer lists CRLs (or left the channel) has none from it.
        for msp_id in sorted(self._channel_msps | set(lists)):
            try:
                self._source.set_channel_crls(msp_id, lists.get(msp_id, ()))
            except AnchorlineError as exc:
                log.warning("channel configuration: CRL of %s ignored: %s", msp_id, exc.message)
        self._channel_msps = set(lists)
        self._channel_version = version
        return True

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


class SessionEndFollower:
    """Applies the session ends other processes write to the shared store.

    Each round reads the ends with an id above the last one seen. Ids are taken
    when a transaction inserts, so one that took a lower id may commit after a
    higher one was read: an id skipped that way is asked for again each round
    for ``gap_wait_s`` (a rolled-back insert leaves a skip for good). Ends older
    than ``keep_s`` are purged now and then; ``sessions.revoked_ms`` stays the
    truth for sessions first seen later.
    """

    def __init__(
        self,
        repo: AuthRepository,
        sessions: SessionService,
        period_s: float = 0.25,
        *,
        gap_wait_s: float = 5.0,
        keep_s: float = 600.0,
        wall: Clock = now_ms,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._sessions = sessions
        self._period_s = period_s
        self._gap_wait_s = gap_wait_s
        self._keep_ms = int(keep_s * 1000)
        self._wall = wall
        self._clock = clock
        self._after: int | None = None
        # Id skipped by a read -> when it was first missed.
        self._gaps: dict[int, float] = {}

    async def start(self) -> None:
        """Begin after the ends written so far (sessions first seen later are looked
        up in the store anyway)."""
        self._after = await self._repo.last_session_end()

    async def poll(self) -> list[str]:
        """One round: the session ids newly ended here (their listeners were told)."""
        if self._after is None:
            await self.start()
            return []
        now = self._clock()
        for gap, since in list(self._gaps.items()):
            if now - since > self._gap_wait_s:
                del self._gaps[gap]
        rows = await self._repo.session_ends_after(self._after, self._gaps.keys())
        ended: list[str] = []
        for row in rows:
            if row.id > self._after:
                for missing in range(self._after + 1, row.id):
                    self._gaps.setdefault(missing, now)
                self._after = row.id
            else:
                self._gaps.pop(row.id, None)
            if self._sessions.end_elsewhere(row.session_id, notify=True):
                ended.append(row.session_id)
        return ended

    async def run(self) -> None:
        """Poll every ``period_s`` until cancelled; the store briefly unreachable is
        logged and retried, not fatal."""
        rounds = 0
        while True:
            try:
                if rounds % 2400 == 0 and self._after is not None:  # every ~10 min
                    await self._repo.purge_session_ends(self._wall() - self._keep_ms)
                await self.poll()
            except Exception:
                log.warning("reading ended sessions failed; retrying", exc_info=True)
            rounds += 1
            await asyncio.sleep(self._period_s)


__all__ = [
    "ChannelCrlTrust",
    "ChannelCrls",
    "ExtensibleTrust",
    "MspSource",
    "RevocationSource",
    "RevocationWatcher",
    "SessionEndFollower",
]
