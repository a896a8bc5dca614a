"""Channel authorization: pluggable policies, answers cached with a TTL.

Policies are asked in order; the first one with an opinion decides, and no
opinion at all means deny. :class:`ConfigPolicy` holds the role and MSP rules
from settings; the access chaincode's grants (issue 9) plug in as another
:class:`AccessPolicy` placed before it. :meth:`Authorizer.invalidate` drops
cached answers at once and tells listeners (the Socket.IO hub), which
re-check and remove the member from rooms it lost.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from gateway.auth.principal import Principal
from gateway.clock import Clock, now_ms
from gateway.errors import ConfigError


class Action(enum.Enum):
    READ = "read"  # join a channel, read its events
    WRITE = "write"  # emit events to it


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    ABSTAIN = "abstain"


class AccessPolicy(Protocol):
    """One source of access decisions."""

    async def decide(self, principal: Principal, channel: str, action: Action) -> Decision: ...


class ConfigPolicy:
    """Rules ``pattern=role[@msp],...;pattern=...`` from settings.

    The first pattern (``fnmatch`` glob) matching the channel decides: allow
    when an entry matches the member's role (``*`` for any) and, when given,
    its MSP; deny otherwise. ``WRITE`` additionally needs a role listed in
    ``emit_roles``. A channel no pattern matches gets no opinion.
    """

    def __init__(self, rules: str, emit_roles: str) -> None:
        self._rules: list[tuple[str, list[tuple[str, str | None]]]] = []
        for clause in filter(None, (c.strip() for c in rules.split(";"))):
            pattern, sep, entries = clause.partition("=")
            if not sep or not pattern.strip():
                raise ConfigError(
                    f"gateway.authz_rules: {clause!r} is not 'pattern=role[@msp],...'"
                )
            parsed: list[tuple[str, str | None]] = []
            for entry in filter(None, (e.strip() for e in entries.split(","))):
                role, at, msp = entry.partition("@")
                parsed.append((role.strip() or "*", msp.strip() if at else None))
            self._rules.append((pattern.strip(), parsed))
        self._emit_roles = {r.strip() for r in emit_roles.split(",") if r.strip()}

    async def decide(self, principal: Principal, channel: str, action: Action) -> Decision:
        for pattern, entries in self._rules:
            if not fnmatch.fnmatchcase(channel, pattern):
                continue
            allowed = any(
                role in ("*", principal.role) and msp in (None, "*", principal.msp_id)
                for role, msp in entries
            )
            if not allowed:
                return Decision.DENY
            if action is Action.WRITE and principal.role not in self._emit_roles:
                return Decision.DENY
            return Decision.ALLOW
        return Decision.ABSTAIN


InvalidationListener = Callable[[str | None, str | None], Awaitable[None]]


class Authorizer:
    """Asks the policies and caches each (identity, channel, action) answer for ``ttl_s``."""

    def __init__(
        self, policies: Sequence[AccessPolicy], ttl_s: float, clock: Clock = now_ms
    ) -> None:
        self._policies = list(policies)
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._cache: dict[tuple[str, str, str, Action], tuple[bool, int]] = {}
        self._listeners: list[InvalidationListener] = []

    def add_policy(self, policy: AccessPolicy, *, first: bool = True) -> None:
        """Plug in another policy (on-chain grants go first)."""
        if first:
            self._policies.insert(0, policy)
        else:
            self._policies.append(policy)
        self._cache.clear()

    async def allowed(self, principal: Principal, channel: str, action: Action) -> bool:
        key = (principal.fingerprint, principal.role, channel, action)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        verdict = False
        for policy in self._policies:
            decision = await policy.decide(principal, channel, action)
            if decision is not Decision.ABSTAIN:
                verdict = decision is Decision.ALLOW
                break
        self._cache[key] = (verdict, now + self._ttl_ms)
        if len(self._cache) > 200_000:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
        return verdict

    def on_invalidate(self, listener: InvalidationListener) -> None:
        """Call ``listener(fingerprint, channel)`` after each invalidation."""
        self._listeners.append(listener)

    async def invalidate(
        self, *, fingerprint: str | None = None, channel: str | None = None
    ) -> None:
        """Forget cached answers for an identity, a channel, or (both None) everything.

        Returns after the listeners ran: a member who lost access has left
        the room by then.
        """
        self._cache = {
            k: v
            for k, v in self._cache.items()
            if not (
                (fingerprint is None or k[0] == fingerprint)
                and (channel is None or k[2] == channel)
            )
        }
        for listener in self._listeners:
            await listener(fingerprint, channel)
