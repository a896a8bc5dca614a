"""The embedded ledger's configuration from the project settings.

``config_from_settings(settings)`` gives an :class:`EmbeddedConfig` for
``settings.embedded_dir``: channel ``settings.network.channel``, the orgs of
``ledger.embedded_orgs``, the chaincode ``network.chaincode_name`` deployed
from ``ledger.embedded_contracts`` (``"module:ATTRIBUTE"``), batching from
``ledger.embedded_batch_max_tx`` / ``embedded_batch_timeout_ms``.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import Settings
from gateway.identity.ca import EmbeddedCA
from gateway.ledger.embedded.engine import CA_FOLDER, ContractsSpec, EmbeddedConfig
from gateway.ledger.embedded.errors import EmbeddedConfigError


def config_from_settings(
    settings: Settings, *, extra_chaincodes: Mapping[str, ContractsSpec] | None = None
) -> EmbeddedConfig:
    """The configuration ``settings`` describe, plus ``extra_chaincodes`` (a test chaincode)."""
    ledger = settings.ledger
    orgs = tuple(o.strip() for o in ledger.embedded_orgs.split(",") if o.strip())
    if not orgs:
        raise EmbeddedConfigError("ledger.embedded_orgs names no org (e.g. Org1,Org2,Org3)")
    chaincodes: dict[str, ContractsSpec] = {
        settings.network.chaincode_name: ledger.embedded_contracts
    }
    chaincodes.update(extra_chaincodes or {})
    return EmbeddedConfig(
        root=settings.embedded_dir,
        channel=settings.network.channel,
        orgs=orgs,
        chaincodes=chaincodes,
        batch_max_tx=ledger.embedded_batch_max_tx,
        batch_timeout_s=ledger.embedded_batch_timeout_ms / 1000.0,
    )


def embedded_ca(settings: Settings) -> EmbeddedCA:
    """The built-in CA the embedded ledger of ``settings`` uses (``<embedded_dir>/ca``).

    ``anchorline network enroll/revoke`` call ``embedded_ca(settings).enroll(org, name,
    role)`` / ``.revoke(org, name)`` when the ledger is embedded.
    """
    return EmbeddedCA(settings.embedded_dir / CA_FOLDER)
