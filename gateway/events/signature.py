"""The wire form of event signatures: base64 text to DER bytes and back.

Checking a signature is :func:`gateway.identity.signing.verify` (events accept
low-S and high-S alike: ``require_low_s=False``).
"""

from __future__ import annotations

import base64
import binascii


def decode_signature(text: str) -> bytes | None:
    """Base64 (standard or URL-safe, padding optional) to bytes; ``None`` if not base64."""
    if not isinstance(text, str) or not 8 <= len(text) <= 256:
        return None
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def encode_signature(signature: bytes) -> str:
    """Standard base64 with padding: the form the gateway stores and broadcasts."""
    return base64.b64encode(signature).decode("ascii")
