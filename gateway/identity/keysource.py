"""Where an identity's signing key lives: its MSP folder's keystore, or a PKCS#11 token.

An identity is always an MSP folder (its certificate in ``signcerts/``, the
CA certificates beside it). Its private key is either a PEM file in
``keystore/`` or a key pair in a token, named by its label; with a token
the folder has no keystore at all.

- :func:`load_identity` — the folder and a :class:`~gateway.identity.signing.Signer`:
  the token's key labelled ``key_label`` when one is given (checked against
  the certificate: a wrong label raises, it never signs with another key),
  else the keystore's key.
- :func:`enroll_in_token` — generate a key pair in the token, have the
  built-in CA issue a certificate for it from a request the token signed,
  and return the new MSP folder (no private key on disk).
- :func:`token_request` — a certificate request for a token key (generated
  first when asked), for a CA this module does not drive (Fabric CA).
- :func:`close_signer` — end a token signer's session; nothing for a file key.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import Pkcs11Settings
from gateway.identity.ca import EmbeddedCA
from gateway.identity.csr import certificate_request
from gateway.identity.msp import MspFolder, load_msp
from gateway.identity.pkcs11 import Pkcs11Signer, Token, TokenConfig, open_signer
from gateway.identity.signing import Signer


def load_identity(
    msp_dir: str | Path,
    msp_id: str,
    *,
    pkcs11: Pkcs11Settings,
    key_label: str = "",
) -> tuple[MspFolder, Signer]:
    """The identity in ``msp_dir`` and its signer (see the module docstring)."""
    if not key_label:
        folder = load_msp(msp_dir, msp_id, require_key=True)
        return folder, folder.signer()
    folder = load_msp(msp_dir, msp_id)
    signer = open_signer(
        TokenConfig.from_settings(pkcs11), key_label, expect=folder.identity.public_key
    )
    return folder, signer


def enroll_in_token(
    ca: EmbeddedCA,
    token: Token,
    *,
    org: str,
    name: str,
    role: str,
    key_label: str,
    generate: bool = True,
) -> Path:
    """Enrol ``name`` with the built-in CA for a key in ``token`` labelled ``key_label``
    (generated now unless ``generate`` is false); returns the MSP folder, which has
    no keystore."""
    signer = token.generate_key(key_label) if generate else token.signer(key_label)
    request = certificate_request(signer, signer.public_key, name)
    return ca.enroll(org, name, role, request=request)


def token_request(pkcs11: Pkcs11Settings, key_label: str, name: str, *, generate: bool) -> bytes:
    """A PEM certificate request with subject ``CN=name`` signed by the token key
    ``key_label`` (generated now when ``generate``)."""
    token = Token.open(TokenConfig.from_settings(pkcs11))
    try:
        signer = token.generate_key(key_label) if generate else token.signer(key_label)
        return certificate_request(signer, signer.public_key, name)
    finally:
        token.close()


def close_signer(signer: Signer) -> None:
    """Close the token session of a :class:`Pkcs11Signer` opened for one identity."""
    if isinstance(signer, Pkcs11Signer):
        signer.close()
