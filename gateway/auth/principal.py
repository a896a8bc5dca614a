"""Who is behind a session: the verified identity the gateway acts for."""

from __future__ import annotations

import dataclasses

from cryptography.hazmat.primitives.asymmetric import ec


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated member; ``public_key`` verifies its event signatures."""

    session_id: str
    fingerprint: str
    msp_id: str
    role: str
    expires_ms: int
    public_key: ec.EllipticCurvePublicKey = dataclasses.field(compare=False, repr=False)
