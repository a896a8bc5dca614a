"""``anchorline gateway tls-cert``: a server certificate from the built-in CA that the
gateway's TLS settings accept as printed."""

from __future__ import annotations

import dataclasses
import ssl
import tomllib
from pathlib import Path

import pytest
from cryptography import x509

from gateway.cli.main import main
from gateway.config import load_settings
from gateway.web.tls import server_ssl_context


def test_tls_cert_prints_settings_the_gateway_can_serve_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANCHORLINE_HOME", str(tmp_path))
    assert main(["gateway", "tls-cert", "--host", "gw.example", "--host", "10.0.0.5"]) == 0
    out = capsys.readouterr().out
    table = tomllib.loads(out.split("\n", 1)[1])["gateway"]
    base = load_settings({"ANCHORLINE_HOME": str(tmp_path)})
    gs = dataclasses.replace(base.gateway, **table)
    assert isinstance(server_ssl_context(gs), ssl.SSLContext)
    cert = x509.load_pem_x509_certificate(Path(table["tls_cert_file"]).read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "gw.example" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]


def test_tls_settings_go_together(tmp_path: Path) -> None:
    from gateway.errors import ConfigError

    base = load_settings({"ANCHORLINE_HOME": str(tmp_path)})
    assert server_ssl_context(base.gateway) is None
    with pytest.raises(ConfigError):
        server_ssl_context(dataclasses.replace(base.gateway, tls_cert_file="/nope.pem"))
