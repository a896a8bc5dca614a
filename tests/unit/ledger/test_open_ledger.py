"""open_ledger: the gateway's and an auditor's connection to the ledger the settings name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.anchoring.ledger import reader_msp
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.identity.ca import EmbeddedCA
from gateway.ledger.connection import EMBEDDED_GATEWAY_NAME, ledger_kind, open_ledger


def _settings(home: Path, **anchoring: str) -> Settings:
    base = load_settings({"ANCHORLINE_HOME": str(home)})
    return dataclasses.replace(base, anchoring=dataclasses.replace(base.anchoring, **anchoring))


async def test_the_gateways_own_connection_on_the_embedded_ledger(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert ledger_kind(settings) == "embedded"  # no network profile
    conn = open_ledger(settings)
    try:
        assert conn.kind == "embedded"
        assert conn.channel == settings.network.channel
        assert conn.chaincode == settings.network.chaincode_name
        assert conn.msp_id == "Org1MSP"
        # An identity the built-in CA issued for the gateway, and its own peer first.
        ca = EmbeddedCA(settings.embedded_dir / "ca")
        assert ca.identity_dir("Org1", EMBEDDED_GATEWAY_NAME).is_dir()
        assert conn.transports[0].endpoint == "embedded:Org1MSP"
        assert len(conn.transports) == len(conn.msp_ids) >= 2
        assert conn.trust.verify(conn.identity.certificate_pem).msp_id == "Org1MSP"
        assert reader_msp(conn, "") == "Org2MSP"
        metadata = (
            await conn.gateway.network(conn.channel)
            .contract(conn.chaincode)
            .evaluate("org.hyperledger.fabric:GetMetadata")
        )
        assert b"anchor" in metadata
    finally:
        await conn.close()
    # Closed: another process (or this one) may open the ledger again.
    again = open_ledger(settings)
    await again.close()


async def test_an_auditor_connects_as_itself_and_its_org_comes_from_its_certificate(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    first = open_ledger(settings)
    await first.close()
    auditor_dir = EmbeddedCA(settings.embedded_dir / "ca").enroll("Org3", "audrey", "auditor")
    conn = open_ledger(settings, peer=f"embedded:{settings.embedded_dir}", msp_dir=auditor_dir)
    try:
        assert conn.msp_id == "Org3MSP"
        assert conn.transports[0].endpoint == "embedded:Org3MSP"
    finally:
        await conn.close()


async def test_reader_org_must_be_another_org_of_the_ledger(tmp_path: Path) -> None:
    conn = open_ledger(_settings(tmp_path))
    try:
        assert reader_msp(conn, "Org3") == "Org3MSP"
        with pytest.raises(ConfigError, match="another org"):
            reader_msp(conn, "Org1")
        with pytest.raises(ConfigError, match="is not one of"):
            reader_msp(conn, "Org9")
    finally:
        await conn.close()


def test_fabric_without_a_profile_says_what_to_do(tmp_path: Path) -> None:
    base = _settings(tmp_path)
    settings = dataclasses.replace(base, ledger=dataclasses.replace(base.ledger, kind="fabric"))
    with pytest.raises(ConfigError, match="anchorline network up"):
        open_ledger(settings)
    with pytest.raises(ConfigError, match="not a network profile"):
        open_ledger(settings, peer=str(tmp_path / "nowhere"), msp_dir=tmp_path)
