"""The event intake: the one rule that turns a wire event into a :class:`NewEvent`.

Every event that reaches the store passes here, whichever door it came in
by (a Socket.IO emit through the hub, a REST call to the marketplace, the
gateway's own auctioneer). The steps, in this order, and the refusal of each:

1. shape and size against :class:`IntakeLimits` — :class:`MalformedEvent`
   (AL1601) naming the field, :class:`EventTooLarge` (AL1602), and the JSON
   limits of the five signed fields (depth AL1017, keys AL1019, string
   length AL1020; numbers and surrogates AL1014-AL1016);
2. may this principal emit to the event's channel — the caller's
   :class:`EmitGate` (the hub's: :class:`NotJoined` AL1604, then
   :class:`AccessDenied` AL1511; the authorizer's: AL1511);
3. the signature against the principal's certificate key —
   :class:`BadEventSignature` (AL1603).

:func:`intake` is synchronous so the hub's hot path stays inline (its gate
answers from the decisions it cached at join time, which the authorizer
refreshes on invalidation); :func:`intake_authorized` asks the
:class:`~gateway.auth.authorizer.Authorizer` itself, for callers that are
already async and hold no cached decision. Both run the same steps.

The hub runs the same steps in two halves, so that step 3 of many events can
be checked on another core (:mod:`gateway.events.verifier`):
:func:`check_unsigned` (steps 1 and 2), then :func:`signature_ok` (step 3's
check) wherever it runs, then :func:`accept_signed` (step 3's refusal).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final, Protocol

from gateway.auth.authorizer import Action, Authorizer
from gateway.auth.errors import AccessDenied
from gateway.auth.principal import Principal
from gateway.errors import ConfigError
from gateway.events.errors import BadEventSignature
from gateway.events.model import NewEvent, SignedEvent, parse_event
from gateway.identity.signing import verify
from gateway.strict_json import EVENT_LIMITS, JsonLimits

if TYPE_CHECKING:  # settings are read by the composition root, not by the intake
    from gateway.config import GatewaySettings


@dataclasses.dataclass(frozen=True, slots=True)
class IntakeLimits:
    """What an incoming event may weigh; one object for every door of the intake.

    ``max_event_bytes`` bounds the event's canonical JSON; ``max_depth``,
    ``max_keys`` and ``max_string`` bound its five signed fields (see
    :class:`~gateway.strict_json.JsonLimits`). The defaults are the
    protocol's (:data:`~gateway.strict_json.EVENT_LIMITS`): what the store,
    the replay, the proof builder and both verifiers accept. A gateway may be
    configured lower, never higher — an event acknowledged beyond them could
    not be proven.
    """

    max_event_bytes: int = EVENT_LIMITS.max_bytes
    max_depth: int = EVENT_LIMITS.max_depth
    max_keys: int = EVENT_LIMITS.max_keys
    max_string: int = EVENT_LIMITS.max_string

    def __post_init__(self) -> None:
        for name in ("max_event_bytes", "max_depth", "max_keys", "max_string"):
            value = getattr(self, name)
            most = getattr(EVENT_LIMITS, "max_bytes" if name == "max_event_bytes" else name)
            if not 1 <= value <= most:
                raise ConfigError(
                    f"intake limit {name} = {value} is outside 1..{most}: events beyond the "
                    "protocol's limits could not be proven or verified (docs/proof-format.md)"
                )

    @property
    def json_limits(self) -> JsonLimits:
        """The same limits as a :class:`JsonLimits` (for the store and the proof builder)."""
        return JsonLimits(
            max_depth=self.max_depth,
            max_bytes=self.max_event_bytes,
            max_keys=self.max_keys,
            max_string=self.max_string,
        )

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> IntakeLimits:
        """The limits configured in ``gateway.*`` (``max_payload_bytes``,
        ``json_max_depth``, ``json_max_keys``, ``json_max_string``)."""
        return cls(
            max_event_bytes=settings.max_payload_bytes,
            max_depth=settings.json_max_depth,
            max_keys=settings.json_max_keys,
            max_string=settings.json_max_string,
        )


class EmitGate(Protocol):
    """Whether ``principal`` may emit to ``channel`` now.

    Returns when it may; raises a refusal (an
    :class:`~gateway.errors.AnchorlineError` with its code) when it may not.
    """

    def check_emit(self, principal: Principal, channel: str) -> None: ...


def emit_denied(principal: Principal, channel: str) -> AccessDenied:
    """The refusal for a principal the authorizer does not let emit to ``channel``."""
    return AccessDenied(f"role {principal.role!r} may not emit to {channel!r}")


class _Decided:
    """A gate over one decision already taken by the authorizer."""

    __slots__ = ("_allowed",)

    def __init__(self, allowed: bool) -> None:
        self._allowed = allowed

    def check_emit(self, principal: Principal, channel: str) -> None:
        if not self._allowed:
            raise emit_denied(principal, channel)


class _Authority:
    """The gateway's own events: it is the authority on the channels it runs."""

    __slots__ = ()

    def check_emit(self, principal: Principal, channel: str) -> None:
        return None


GATEWAY_AUTHORITY: Final[EmitGate] = _Authority()
"""The gate for events the gateway signs itself (an auction's close, a settlement
status): they go to channels the gateway may have closed to members."""


def read_event(raw: object, limits: IntakeLimits) -> SignedEvent:
    """Step 1 alone: the event's shape and size (for callers that route on the channel)."""
    return parse_event(raw, limits.max_event_bytes, limits.json_limits)


def signature_ok(principal: Principal, event: SignedEvent) -> bool:
    """Step 3's check: the event's signature against the principal's certificate key
    (low-S and high-S alike). Pure: safe to call from any thread."""
    return verify(principal.public_key, event.canonical, event.signature, require_low_s=False)


def accept_signed(
    principal: Principal, event: SignedEvent, verified: bool, received_ms: int
) -> NewEvent:
    """Step 3's outcome: the event ready to store when ``verified`` (the answer of
    :func:`signature_ok`), else :class:`BadEventSignature` (AL1603)."""
    if not verified:
        raise BadEventSignature("signature does not verify against your session's certificate")
    return NewEvent(event, principal.fingerprint, principal.msp_id, received_ms)


def check_unsigned(
    principal: Principal, raw: object, limits: IntakeLimits, gate: EmitGate
) -> SignedEvent:
    """Steps 1 and 2: the event's shape and size, then the gate; its signature is left
    to :func:`signature_ok` and :func:`accept_signed`."""
    event = read_event(raw, limits)
    gate.check_emit(principal, event.channel)
    return event


def _admit(principal: Principal, event: SignedEvent, received_ms: int) -> NewEvent:
    return accept_signed(principal, event, signature_ok(principal, event), received_ms)


def intake(
    principal: Principal,
    raw: object,
    limits: IntakeLimits,
    gate: EmitGate,
    received_ms: int,
) -> NewEvent:
    """The event ``raw`` sent by ``principal``, checked and ready to store.

    Raises the refusal of the first step that fails (see the module docstring).
    """
    return _admit(principal, check_unsigned(principal, raw, limits, gate), received_ms)


async def intake_authorized(
    principal: Principal,
    raw: object,
    limits: IntakeLimits,
    authorizer: Authorizer,
    received_ms: int,
) -> NewEvent:
    """:func:`intake` with the authorizer's ``WRITE`` decision for the event's channel."""
    event = read_event(raw, limits)
    allowed = await authorizer.allowed(principal, event.channel, Action.WRITE)
    _Decided(allowed).check_emit(principal, event.channel)
    return _admit(principal, event, received_ms)


__all__ = [
    "GATEWAY_AUTHORITY",
    "EmitGate",
    "IntakeLimits",
    "accept_signed",
    "check_unsigned",
    "emit_denied",
    "intake",
    "intake_authorized",
    "read_event",
    "signature_ok",
]
