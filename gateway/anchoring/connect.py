"""The gateway's anchoring connection, from the settings: ledger, identity, reader org.

``open_anchoring(settings)`` gives a :class:`Connection`: the
:class:`~gateway.anchoring.ledger.FabricAnchorLedger` (over the native
network's profile, or over an embedded ledger opened in this process), the
gateway's :class:`~gateway.anchoring.batcher.GatewayIdentity`, and what to
close at the end. ``ledger.kind`` ``auto`` means Fabric when a network
profile exists, else embedded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.anchoring.batcher import GatewayIdentity
from gateway.anchoring.ledger import FabricAnchorLedger
from gateway.config import Settings
from gateway.errors import AnchorlineError, ConfigError
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore
from gateway.identity.errors import IdentityNotFound
from gateway.identity.keysource import close_signer, enroll_in_token, load_identity
from gateway.identity.msp import MspFolder
from gateway.identity.pkcs11 import Token, TokenConfig
from gateway.identity.signing import Signer
from gateway.ledger.client import Timeouts

if TYPE_CHECKING:
    from network.profile import NetworkProfile

#: The name the built-in CA issues the gateway's identity under (embedded ledger).
EMBEDDED_GATEWAY_NAME = "anchorline-gateway"


@dataclasses.dataclass
class Connection:
    ledger: FabricAnchorLedger
    identity: GatewayIdentity
    kind: str
    close: Callable[[], Awaitable[None]]


def profile_path(settings: Settings) -> Path:
    return Path(settings.anchoring.profile or settings.network_dir / "profile.json")


def ledger_kind(settings: Settings) -> str:
    if settings.ledger.kind != "auto":
        return settings.ledger.kind
    return "fabric" if profile_path(settings).is_file() else "embedded"


def _timeouts(settings: Settings) -> Timeouts:
    ls = settings.ledger
    return Timeouts(
        endorse=ls.endorse_timeout_s, submit=ls.submit_timeout_s, commit_status=ls.commit_timeout_s
    )


def _reader(orgs: list[str], own: str, wanted: str) -> str:
    if wanted:
        if wanted not in orgs:
            raise ConfigError(f"anchoring.reader_org: {wanted} is not one of {', '.join(orgs)}")
        if wanted == own:
            raise ConfigError("anchoring.reader_org must be another org than the gateway's")
        return wanted
    others = [o for o in orgs if o != own]
    if not others:
        raise ConfigError(
            "finalizing an anchor needs a second org whose peer reads it back; the ledger has "
            f"only {own}"
        )
    return others[0]


def open_anchoring(settings: Settings) -> Connection:
    """Connect the trust path to the ledger the settings name (see module docstring)."""
    kind = ledger_kind(settings)
    if kind == "embedded":
        return _open_embedded(settings)
    return _open_fabric(settings)


def _open_embedded(settings: Settings) -> Connection:
    from gateway.ledger.embedded import EmbeddedLedger, config_from_settings
    from gateway.ledger.embedded.connect import embedded_gateway

    ledger = EmbeddedLedger.open(config_from_settings(settings))
    try:
        org = settings.anchoring.gateway_org
        msp_id = ledger.ca.msp_id(org)
        if settings.ledger.msp_dir:
            msp_dir = Path(settings.ledger.msp_dir)
        else:
            try:
                msp_dir = ledger.ca.identity_dir(org, EMBEDDED_GATEWAY_NAME)
            except IdentityNotFound:
                msp_dir = _enroll_embedded_gateway(settings, ledger.ca, org)
        folder, signer = _gateway_identity(settings, msp_dir, msp_id)
    except BaseException:
        ledger.close_sync()
        raise
    try:
        gw = embedded_gateway(ledger, msp_dir, org=org, signer=signer, timeouts=_timeouts(settings))
        reader = _reader(list(ledger.msp_ids()), msp_id, _msp(ledger.ca.msp_id, settings))
    except BaseException:
        close_signer(signer)
        ledger.close_sync()
        raise
    anchor = FabricAnchorLedger(
        gw,
        fabric_channel=settings.network.channel,
        chaincode=settings.network.chaincode_name,
        reader_msp=reader,
        call_timeout_s=settings.ledger.submit_timeout_s,
    )

    async def close() -> None:
        await anchor.close()
        await ledger.close()
        close_signer(signer)

    return Connection(anchor, GatewayIdentity(folder.identity, signer), "embedded", close)


def _gateway_identity(
    settings: Settings, msp_dir: str | Path, msp_id: str
) -> tuple[MspFolder, Signer]:
    """The gateway's certificate and signer: its key in the PKCS#11 token when
    ``pkcs11.key_label`` is set, else the MSP folder's keystore."""
    return load_identity(
        msp_dir, msp_id, pkcs11=settings.pkcs11, key_label=settings.pkcs11.key_label
    )


def _enroll_embedded_gateway(settings: Settings, ca: EmbeddedCA, org: str) -> Path:
    """The built-in CA's first identity for the gateway: for its key in the token when
    one is configured (the key must exist: nothing is generated behind the operator's
    back), else for a new key in a keystore file."""
    if not settings.pkcs11.key_label:
        return ca.enroll(org, EMBEDDED_GATEWAY_NAME, "admin")
    token = Token.open(TokenConfig.from_settings(settings.pkcs11))
    try:
        return enroll_in_token(
            ca,
            token,
            org=org,
            name=EMBEDDED_GATEWAY_NAME,
            role="admin",
            key_label=settings.pkcs11.key_label,
            generate=False,
        )
    finally:
        token.close()


def _msp(to_msp: Callable[[str], str], settings: Settings) -> str:
    wanted = settings.anchoring.reader_org
    return to_msp(wanted) if wanted else ""


def _open_fabric(settings: Settings) -> Connection:
    from gateway.ledger.connect import from_profile
    from network.profile import NetworkProfile

    path = profile_path(settings)
    if not path.is_file():
        raise ConfigError(
            f"no network profile at {path}: run `anchorline network up` or set anchoring.profile"
        )
    profile = NetworkProfile.load(path)
    try:
        org = profile.org(settings.anchoring.gateway_org)
    except KeyError:
        raise ConfigError(
            f"anchoring.gateway_org: {settings.anchoring.gateway_org} is not an org of the network"
        ) from None
    # Without a configured identity the gateway anchors as its org's admin (what
    # `anchorline network up` enrols); production sets ledger.msp_dir.
    msp_dir = settings.ledger.msp_dir or str(org.admin_msp_dir)
    wanted = ""
    if settings.anchoring.reader_org:
        try:
            wanted = profile.org(settings.anchoring.reader_org).msp_id
        except KeyError:
            raise ConfigError(
                f"anchoring.reader_org: {settings.anchoring.reader_org} is not an org of the "
                "network"
            ) from None
    reader = _reader([o.msp_id for o in profile.orgs], org.msp_id, wanted)
    folder, signer = _gateway_identity(settings, msp_dir, org.msp_id)
    try:
        gw = from_profile(
            profile, msp_dir, org=org.name, signer=signer, timeouts=_timeouts(settings)
        )
    except BaseException:
        close_signer(signer)
        raise
    anchor = FabricAnchorLedger(
        gw,
        fabric_channel=profile.channel,
        chaincode=settings.network.chaincode_name,
        reader_msp=reader,
        call_timeout_s=settings.ledger.submit_timeout_s,
    )

    async def close() -> None:
        await anchor.close()
        close_signer(signer)

    return Connection(anchor, GatewayIdentity(folder.identity, signer), "fabric", close)


@dataclasses.dataclass
class AuditorConnection:
    """An auditor's own view of the ledger: its identity, its org's peer, the MSPs it trusts."""

    ledger: FabricAnchorLedger
    trust: TrustStore
    msp_id: str
    kind: str
    close: Callable[[], Awaitable[None]]


def _infer_msp(trust: TrustStore, msp_dir: Path, msp_id: str | None) -> str:
    if msp_id:
        return msp_id
    signcerts = sorted((msp_dir / "signcerts").glob("*.pem"))
    if not signcerts:
        raise ConfigError(f"{msp_dir}/signcerts holds no certificate: is it an MSP folder?")
    try:
        return trust.verify(signcerts[0].read_bytes()).msp_id
    except AnchorlineError as exc:
        raise ConfigError(
            f"the certificate in {msp_dir} is not one of the network's MSPs ({exc.message}); "
            "pass --msp-id"
        ) from None


def open_auditor(
    settings: Settings,
    peer: str,
    msp_dir: str | Path,
    *,
    msp_id: str | None = None,
    key_label: str = "",
) -> AuditorConnection:
    """Connect as the identity in ``msp_dir`` through its own org's peer.

    ``peer`` is a network profile (JSON file, or a network folder holding
    ``profile.json``) or ``embedded`` / ``embedded:<ledger folder>`` (the
    embedded ledger, opened in this process: no gateway may hold it).
    ``key_label`` names the identity's key in the ``[pkcs11]`` token (its folder
    then needs no keystore); closing the connection ends the token session.
    """
    return _open_auditor(settings, peer, Path(msp_dir), msp_id, key_label)


def _auditor_signer(
    settings: Settings, msp_dir: Path, msp_id: str, key_label: str
) -> Signer | None:
    if not key_label:
        return None
    _, signer = load_identity(msp_dir, msp_id, pkcs11=settings.pkcs11, key_label=key_label)
    return signer


def _open_auditor(
    settings: Settings, peer: str, msp_dir: Path, msp_id: str | None, key_label: str
) -> AuditorConnection:
    if peer == "embedded" or peer.startswith("embedded:"):
        from gateway.ledger.embedded import EmbeddedLedger, config_from_settings
        from gateway.ledger.embedded.connect import embedded_gateway

        config = config_from_settings(settings)
        folder = peer.partition(":")[2]
        if folder:
            config = dataclasses.replace(config, root=Path(folder))
        ledger = EmbeddedLedger.open(config)
        signer = None
        try:
            trust = ledger.trust
            found = _infer_msp(trust, msp_dir, msp_id)
            signer = _auditor_signer(settings, msp_dir, found, key_label)
            gw = embedded_gateway(
                ledger, msp_dir, org=found, signer=signer, timeouts=_timeouts(settings)
            )
        except BaseException:
            if signer is not None:
                close_signer(signer)
            ledger.close_sync()
            raise
        anchor = FabricAnchorLedger(
            gw, fabric_channel=config.channel, chaincode=settings.network.chaincode_name
        )

        async def close() -> None:
            await anchor.close()
            await ledger.close()
            if signer is not None:
                close_signer(signer)

        return AuditorConnection(anchor, trust, found, "embedded", close)

    from gateway.ledger.connect import from_profile
    from network.profile import NetworkProfile

    path = Path(peer)
    if path.is_dir():
        path = path / "profile.json"
    if not path.is_file():
        raise ConfigError(
            f"--peer {peer}: not a network profile (profile.json) nor 'embedded[:<folder>]'"
        )
    profile = NetworkProfile.load(path)
    trust = trust_from_profile(profile)
    found = _infer_msp(trust, msp_dir, msp_id)
    signer = _auditor_signer(settings, msp_dir, found, key_label)
    gw = from_profile(profile, msp_dir, org=found, signer=signer, timeouts=_timeouts(settings))
    anchor = FabricAnchorLedger(
        gw, fabric_channel=profile.channel, chaincode=settings.network.chaincode_name
    )

    async def close_fabric() -> None:
        await anchor.close()
        if signer is not None:
            close_signer(signer)

    return AuditorConnection(anchor, trust, found, "fabric", close_fabric)


def trust_from_profile(profile: NetworkProfile) -> TrustStore:
    """The CA certificates (and CRLs) of every org MSP of a network profile."""
    trust = TrustStore()
    for org in profile.orgs:
        crls = [Path(org.crl_path)] if org.crl_path and Path(org.crl_path).is_file() else []
        for ca in org.msp_ca_certs:
            trust.add_ca(org.msp_id, Path(ca).read_bytes(), crls=crls)
    return trust
