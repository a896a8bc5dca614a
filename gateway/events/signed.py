"""Signing an event: the wire form a member (or the gateway's auctioneer) emits.

:func:`sign_event` is the one place that builds ``{id, channel, type,
payload, client_ts, signature}``; the member client library and the
marketplace both call it, so what a member signs and what the gateway signs
cannot drift apart.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.clock import now_ms
from gateway.events.canonical import canonical_json
from gateway.events.signature import encode_signature
from gateway.identity.signing import Signer, sign_message


def sign_event(
    signer: Signer,
    *,
    channel: str,
    type: str,
    payload: Any,
    event_id: str | None = None,
    client_ts: int | None = None,
) -> dict[str, Any]:
    """The wire form of an event signed by ``signer`` (usable offline).

    ``event_id`` defaults to a random UUID (hex), ``client_ts`` to now in
    milliseconds. The signature is DER ECDSA over the RFC 8785 canonical
    JSON of the five signed fields, base64 with padding.
    """
    body = {
        "id": event_id or uuid.uuid4().hex,
        "channel": channel,
        "type": type,
        "payload": payload,
        "client_ts": client_ts if client_ts is not None else now_ms(),
    }
    signature = sign_message(signer, canonical_json(body))
    return {**body, "signature": encode_signature(signature)}


__all__ = ["sign_event"]
