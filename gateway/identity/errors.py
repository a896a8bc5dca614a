"""Errors of the identity package (codes AL12xx).

Certificate verification failures are one type per reason, all subclasses of
:class:`CertificateRejected`, so a caller can catch the family (for example
to answer 401) and still show the precise reason from the message.
"""

from __future__ import annotations

from gateway.errors import AnchorlineError


class IdentityError(AnchorlineError):
    """Base of the identity package's errors."""

    code = "AL1200"
    http_status = 400


class CertificateParseError(IdentityError):
    """Bytes that should hold an X.509 certificate (PEM or DER) do not."""

    code = "AL1201"
    http_status = 400


class CertificateRejected(IdentityError):
    """A certificate is well-formed but not acceptable as an identity."""

    code = "AL1202"
    http_status = 401


class UnknownCertificateAuthority(CertificateRejected):
    """The certificate's issuer is none of the trusted MSPs' CAs."""

    code = "AL1203"


class CertificateExpired(CertificateRejected):
    """The certificate's validity ended before the time of the check."""

    code = "AL1204"


class CertificateNotYetValid(CertificateRejected):
    """The certificate's validity starts after the time of the check."""

    code = "AL1205"


class CertificateRevoked(CertificateRejected):
    """The certificate's serial number is on its CA's CRL."""

    code = "AL1206"


class NoDigitalSignatureUsage(CertificateRejected):
    """The certificate's key usage does not allow digital signatures."""

    code = "AL1207"


class BadCertificateChain(CertificateRejected):
    """The issuer is named by a trusted MSP but the chain does not verify."""

    code = "AL1208"


class MspFolderError(IdentityError):
    """An MSP folder is missing, incomplete or holds unreadable files."""

    code = "AL1209"
    http_status = 500


class CaError(IdentityError):
    """The built-in CA cannot do what was asked (see the message)."""

    code = "AL1210"
    http_status = 400


class IdentityAlreadyEnrolled(CaError):
    """An identity with that name already exists in that org."""

    code = "AL1211"
    http_status = 409


class IdentityNotFound(CaError):
    """No identity with that name was issued by that org's CA."""

    code = "AL1212"
    http_status = 404


# -- PKCS#11 tokens (AL123x): each failure its own code, never a fallback key ----------------


class TokenError(IdentityError):
    """A PKCS#11 token cannot do what was asked; the message says what and why."""

    code = "AL1230"
    http_status = 500


class TokenModuleError(TokenError):
    """The PKCS#11 module (``pkcs11.module``) is missing or cannot be loaded."""

    code = "AL1231"


class TokenNotFound(TokenError):
    """No token (or more than one) carries the configured label."""

    code = "AL1232"


class TokenPinIncorrect(TokenError):
    """The token refused the PIN (wrong, or the PIN is locked)."""

    code = "AL1233"


class TokenKeyNotFound(TokenError):
    """The token holds no key pair with that label (or several)."""

    code = "AL1234"


class TokenNoP256(TokenError):
    """The token, or the key found, cannot make ECDSA P-256 signatures."""

    code = "AL1235"


class TokenKeyExists(TokenError):
    """A key with that label already exists in the token."""

    code = "AL1236"
    http_status = 409


class TokenPinUnavailable(TokenError):
    """No token or no PIN is configured, or the PIN file cannot be read."""

    code = "AL1237"


class TokenSignFailed(TokenError):
    """The token refused a signature (session closed, token removed...)."""

    code = "AL1238"


class TokenKeyMismatch(TokenError):
    """The token's key is not the key of the certificate it should sign for."""

    code = "AL1239"
