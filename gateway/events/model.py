"""The event model: what a member signs, what the gateway stores and sends.

A member emits ``{id, channel, type, payload, client_ts, signature}``. The
signature is ECDSA-SHA256 (DER, base64) over the RFC 8785 canonical JSON of
the five other fields. The gateway adds the channel sequence, the signer's
certificate fingerprint and the time it received the event.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final

from gateway.events.canonical import canonical_json
from gateway.events.errors import EventTooLarge, MalformedEvent
from gateway.events.signature import decode_signature, encode_signature

SIGNED_FIELDS: Final = ("id", "channel", "type", "payload", "client_ts")
_ALLOWED_FIELDS: Final = frozenset((*SIGNED_FIELDS, "signature"))
_ID_RE: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}\Z")
CHANNEL_RE: Final = re.compile(r"[A-Za-z0-9._\-]{1,64}\Z")
_TYPE_RE: Final = re.compile(r"[A-Za-z0-9._:/\-]{1,64}\Z")
_MAX_SAFE_INT: Final = 2**53 - 1

STATUS_PENDING: Final = "pending"


@dataclasses.dataclass(frozen=True, slots=True)
class SignedEvent:
    """A well-formed event as received; its signature is not yet checked."""

    id: str
    channel: str
    type: str
    payload: Any
    client_ts: int
    signature: bytes
    canonical: bytes

    def signed_body(self) -> dict[str, Any]:
        """The object whose canonical JSON the member signed."""
        return {
            "id": self.id,
            "channel": self.channel,
            "type": self.type,
            "payload": self.payload,
            "client_ts": self.client_ts,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the store holds it: durable, sequenced, attributed."""

    channel: str
    seq: int
    id: str
    type: str
    payload: Any
    client_ts: int
    signer: str
    msp_id: str
    signature: bytes
    canonical: bytes
    received_at_ms: int

    def to_wire(self, status: str = STATUS_PENDING) -> dict[str, Any]:
        """The JSON object sent to subscribers and returned by the REST API."""
        return {
            "id": self.id,
            "channel": self.channel,
            "seq": self.seq,
            "type": self.type,
            "payload": self.payload,
            "client_ts": self.client_ts,
            "signer": self.signer,
            "msp_id": self.msp_id,
            "signature": encode_signature(self.signature),
            "received_at": self.received_at_ms,
            "status": status,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class NewEvent:
    """An event whose signature checked out, ready to be stored.

    Built by :mod:`gateway.events.intake`, the one place that checks events.
    """

    event: SignedEvent
    signer: str
    msp_id: str
    received_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class AppendResult:
    """What happened to one event of a batch.

    ``duplicate`` is true when an event with the same id was already stored
    (``stored`` is then the earlier one); ``conflict`` when that earlier
    event's signed bytes differ from this one's.
    """

    stored: StoredEvent
    duplicate: bool = False
    conflict: bool = False


def valid_channel(name: object) -> bool:
    """True when ``name`` is a usable channel name."""
    return isinstance(name, str) and CHANNEL_RE.match(name) is not None


def parse_event(raw: object, max_bytes: int) -> SignedEvent:
    """Check the shape of an incoming event and canonicalise it.

    Raises :class:`MalformedEvent` naming the offending field, or
    :class:`EventTooLarge` when the canonical form exceeds ``max_bytes``.
    """
    if not isinstance(raw, dict):
        raise MalformedEvent("an event must be a JSON object")
    extra = raw.keys() - _ALLOWED_FIELDS
    if extra:
        names = ", ".join(sorted(str(k) for k in extra)[:5])
        raise MalformedEvent(f"unknown event field(s): {names}")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not _ID_RE.match(event_id):
        raise MalformedEvent("id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
    channel = raw.get("channel")
    if not valid_channel(channel):
        raise MalformedEvent("channel must be 1-64 characters of A-Z a-z 0-9 . _ -")
    assert isinstance(channel, str)
    event_type = raw.get("type")
    if not isinstance(event_type, str) or not _TYPE_RE.match(event_type):
        raise MalformedEvent("type must be 1-64 characters of A-Z a-z 0-9 . _ : / -")
    if "payload" not in raw:
        raise MalformedEvent("payload is missing (use null for none)")
    client_ts = raw.get("client_ts")
    if (
        not isinstance(client_ts, int)
        or isinstance(client_ts, bool)
        or not 0 <= client_ts <= _MAX_SAFE_INT
    ):
        raise MalformedEvent("client_ts must be a non-negative integer (milliseconds)")
    signature = decode_signature(raw.get("signature"))  # type: ignore[arg-type]
    if signature is None:
        raise MalformedEvent("signature must be a base64 DER ECDSA signature")
    payload = raw["payload"]
    body = {
        "id": event_id,
        "channel": channel,
        "type": event_type,
        "payload": payload,
        "client_ts": client_ts,
    }
    canonical = canonical_json(body)
    if len(canonical) > max_bytes:
        raise EventTooLarge(
            f"event is {len(canonical)} bytes in canonical form; the limit is {max_bytes}"
        )
    return SignedEvent(event_id, channel, event_type, payload, client_ts, signature, canonical)
