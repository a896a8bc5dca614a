"""The gateway's own TLS: an SSL context from ``gateway.tls_cert_file`` and ``tls_key_file``."""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config import GatewaySettings
from gateway.errors import ConfigError


def server_ssl_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """A TLS 1.2+ server context, or None when neither file is set (plain HTTP).

    Raises :class:`~gateway.errors.ConfigError` when only one is set, a file is
    missing, or the key does not match the certificate.
    """
    cert, key = settings.tls_cert_file.strip(), settings.tls_key_file.strip()
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError(
            "gateway.tls_cert_file and gateway.tls_key_file go together: set both or neither"
        )
    for name, value in (("tls_cert_file", cert), ("tls_key_file", key)):
        if not Path(value).expanduser().is_file():
            raise ConfigError(f"gateway.{name}: {value} is not a file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(Path(cert).expanduser()), str(Path(key).expanduser()))
    except ssl.SSLError as exc:
        raise ConfigError(
            f"gateway.tls_cert_file/tls_key_file: cannot use {cert} with {key} ({exc.reason})"
        ) from None
    return context


__all__ = ["server_ssl_context"]
