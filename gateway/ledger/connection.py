"""Opening the ledger: :func:`open_ledger` for every process that talks to it.

``open_ledger(settings)`` gives a :class:`LedgerConnection`: the ledger the
settings name (``ledger.kind``; ``auto`` means Fabric when a network profile
exists, else the embedded ledger, opened in this process), a
:class:`~gateway.ledger.gateway.Gateway` for one identity over every org's
peer (own org first), that identity and its signer, the MSPs the ledger
trusts, and what to close at the end. By default the identity is the
gateway's own (``ledger.msp_dir``, else its org's admin on Fabric or an
identity the built-in CA issues on the embedded ledger, in org
``anchoring.gateway_org``), its key in the PKCS#11 token when
``pkcs11.key_label`` is set; an auditor passes its own ``msp_dir`` (and
``key_label`` for a key in the token) and the ledger to reach (``peer``).
The trust path, the marketplace and the CLI build what they need on top of it.

The pieces, for tests and benchmarks that hold a ledger of their own:

- Fabric: :func:`endpoints_from_profile`, :func:`transports_from_profile`,
  :func:`from_profile` (a Gateway for a member's MSP folder over a network
  profile), :func:`trust_from_profile`;
- embedded: :mod:`gateway.ledger.embedded_client` (``embedded_gateway``,
  ``embedded_session``, ``served_gateway``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Literal

from gateway.config import Settings
from gateway.errors import AnchorlineError, ConfigError
from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore
from gateway.identity.errors import IdentityNotFound
from gateway.identity.keysource import close_signer, enroll_in_token, load_identity
from gateway.identity.msp import Identity, load_msp
from gateway.identity.pkcs11 import Token, TokenConfig
from gateway.identity.signing import Signer
from gateway.ledger.client import Timeouts
from gateway.ledger.connection_profile import load_profile
from gateway.ledger.endpoints import Endpoint, own_org_first
from gateway.ledger.gateway import Gateway
from gateway.ledger.grpc_transport import GrpcTransport
from gateway.ledger.profile import NetworkProfile
from gateway.ledger.transport import GatewayTransport

LedgerKind = Literal["fabric", "embedded"]

#: The name the built-in CA issues the gateway's identity under (embedded ledger).
EMBEDDED_GATEWAY_NAME = "anchorline-gateway"


# -- Which ledger -------------------------------------------------------------------------


def profile_path(settings: Settings) -> Path:
    """The Fabric network's profile: ``anchoring.profile``, else ``<network_dir>/profile.json``."""
    return Path(settings.anchoring.profile or settings.network_dir / "profile.json")


def ledger_kind(settings: Settings) -> LedgerKind:
    """``fabric`` or ``embedded``: ``ledger.kind``, or for ``auto`` whether a profile exists."""
    if settings.ledger.kind == "fabric":
        return "fabric"
    if settings.ledger.kind == "embedded":
        return "embedded"
    return "fabric" if profile_path(settings).is_file() else "embedded"


def ledger_timeouts(settings: Settings) -> Timeouts:
    """The client's deadlines per stage, from ``ledger.*_timeout_s``."""
    ls = settings.ledger
    return Timeouts(
        endorse=ls.endorse_timeout_s, submit=ls.submit_timeout_s, commit_status=ls.commit_timeout_s
    )


# -- Fabric, from a network profile ---------------------------------------------------------


def _profile(profile: NetworkProfile | str | Path) -> NetworkProfile:
    if isinstance(profile, str | Path):
        return load_profile(Path(profile))
    return profile


def endpoints_from_profile(profile: NetworkProfile | str | Path, msp_id: str) -> list[Endpoint]:
    """Each org's peer (TLS CA from the profile, server name override); ``msp_id``'s first."""
    loaded = _profile(profile)
    endpoints = [
        Endpoint(
            address=org.peer_address,
            msp_id=org.msp_id,
            tls_root_certs=Path(org.peer_tls_ca).read_bytes(),
            server_name_override=org.peer_host_override or None,
        )
        for org in loaded.orgs
    ]
    return own_org_first(endpoints, msp_id)


def transports_from_profile(
    profile: NetworkProfile | str | Path, msp_id: str
) -> list[GrpcTransport]:
    """One gRPC transport per peer (own org first), to share between gateways."""
    return [GrpcTransport(e) for e in endpoints_from_profile(profile, msp_id)]


def from_profile(
    profile: NetworkProfile | str | Path,
    msp_dir: str | Path,
    *,
    org: str,
    signer: Signer | None = None,
    offline: bool = False,
    timeouts: Timeouts | None = None,
    failover_cooldown_s: float = 2.0,
    spread: bool = False,
    transports: Sequence[GatewayTransport] | None = None,
    watch_commits: bool = True,
) -> Gateway:
    """A Gateway for the member in ``msp_dir`` of ``org`` (name like "Org1" or MSP id).

    Over gRPC to all the peers (own org first). The signer is the folder's key
    unless ``signer`` is given; ``offline=True`` makes a gateway with no signer
    at all (every step signed elsewhere). Pass ``transports`` (from
    :func:`transports_from_profile`) to share connections between several
    gateways; they are then not closed with it.
    """
    loaded = _profile(profile)
    msp_id = loaded.org(org).msp_id
    folder = load_msp(msp_dir, msp_id, require_key=signer is None and not offline)
    if signer is None and not offline:
        signer = folder.signer()
    shared = transports is not None
    if transports is None:
        transports = transports_from_profile(loaded, msp_id)
    return Gateway(
        folder.identity,
        transports,
        close_transports=not shared,
        signer=None if offline else signer,
        timeouts=timeouts,
        failover_cooldown_s=failover_cooldown_s,
        spread=spread,
        watch_commits=watch_commits,
    )


def trust_from_profile(profile: NetworkProfile) -> TrustStore:
    """The CA certificates (and CRLs) of every org MSP of a network profile."""
    trust = TrustStore()
    for org in profile.orgs:
        crls = [Path(org.crl_path)] if org.crl_path and Path(org.crl_path).is_file() else []
        for ca in org.msp_ca_certs:
            trust.add_ca(org.msp_id, Path(ca).read_bytes(), crls=crls)
    return trust


# -- One opened ledger ----------------------------------------------------------------------


@dataclasses.dataclass
class LedgerConnection:
    """An identity's connection to the opened ledger; see the module docstring.

    ``gateway`` is the identity's Gateway over every org's peer, own org first;
    ``msp_ids`` the ledger's orgs in their order; ``trust`` the CA certificates
    (and CRLs) of their MSPs. ``close()`` closes the gateway and, when this
    process opened it, the embedded ledger.
    """

    kind: LedgerKind
    channel: str
    chaincode: str
    gateway: Gateway
    identity: Identity
    signer: Signer
    msp_ids: tuple[str, ...]
    trust: TrustStore
    close: Callable[[], Awaitable[None]]
    # An org's MSP id from its name (``Org1``) or MSP id; KeyError when the ledger
    # has no such org (the embedded ledger derives the id without checking).
    resolve_org: Callable[[str], str]

    @property
    def msp_id(self) -> str:
        return self.identity.msp_id

    @property
    def transports(self) -> list[GatewayTransport]:
        """The peers' transports, own org first: share them with other Gateways
        (``close_transports=False``); :meth:`close` closes them."""
        return list(self.gateway.client.failover.transports)

    @property
    def timeouts(self) -> Timeouts:
        """The gateway's deadlines per stage."""
        return self.gateway.client.timeouts

    def org_msp(self, org: str) -> str:
        """The MSP id of ``org`` (``Org1`` or ``Org1MSP``); KeyError when it is none of the
        network's orgs."""
        return self.resolve_org(org)


def open_ledger(
    settings: Settings,
    *,
    peer: str | None = None,
    msp_dir: str | Path | None = None,
    msp_id: str | None = None,
    key_label: str = "",
) -> LedgerConnection:
    """Open the ledger for one identity (see the module docstring).

    ``peer`` names the ledger instead of the settings: a network profile (JSON
    file, or a network folder holding ``profile.json``) or ``embedded`` /
    ``embedded:<ledger folder>`` (the embedded ledger, opened in this process:
    no gateway may hold it). ``msp_dir`` is the identity's MSP folder (default:
    the gateway's own, see the module docstring); its org is ``msp_id``, else
    the MSP whose CA issued its certificate. ``key_label`` names that
    identity's key in the ``[pkcs11]`` token (for the gateway's own identity:
    ``pkcs11.key_label``); without one the key is the folder's keystore file.
    :class:`ConfigError` when the settings or arguments name no usable ledger
    or identity; a token error (AL123x) when the token key cannot be used.
    """
    if peer is None:
        kind = ledger_kind(settings)
        where: Path | None = None if kind == "embedded" else profile_path(settings)
        if where is not None and not where.is_file():
            raise ConfigError(
                f"no network profile at {where}: run `anchorline network up` or set "
                "anchoring.profile"
            )
    elif peer == "embedded" or peer.startswith("embedded:"):
        kind = "embedded"
        folder = peer.partition(":")[2]
        where = Path(folder) if folder else None
    else:
        kind = "fabric"
        where = Path(peer)
        if where.is_dir():
            where = where / "profile.json"
        if not where.is_file():
            raise ConfigError(
                f"--peer {peer}: not a network profile (profile.json) nor 'embedded[:<folder>]'"
            )
    own = None if msp_dir is None else Path(msp_dir)
    label = settings.pkcs11.key_label if own is None else key_label
    if kind == "embedded":
        return _open_embedded(settings, where, own, msp_id, label)
    assert where is not None
    return _open_fabric(settings, load_profile(where), own, msp_id, label)


def _enroll_embedded_gateway(settings: Settings, ca: EmbeddedCA, org: str, label: str) -> Path:
    """The built-in CA's first identity for the gateway: for its key in the token when
    ``label`` names one (the key must exist: nothing is generated behind the operator's
    back), else for a new key in a keystore file."""
    if not label:
        return ca.enroll(org, EMBEDDED_GATEWAY_NAME, "admin")
    token = Token.open(TokenConfig.from_settings(settings.pkcs11))
    try:
        return enroll_in_token(
            ca,
            token,
            org=org,
            name=EMBEDDED_GATEWAY_NAME,
            role="admin",
            key_label=label,
            generate=False,
        )
    finally:
        token.close()


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


def _open_embedded(
    settings: Settings, root: Path | None, msp_dir: Path | None, msp_id: str | None, label: str
) -> LedgerConnection:
    # Imported here: a process on Fabric never loads the embedded ledger.
    from gateway.ledger.embedded.engine import EmbeddedLedger
    from gateway.ledger.embedded.settings import config_from_settings
    from gateway.ledger.embedded_client import embedded_gateway

    config = config_from_settings(settings)
    if root is not None:
        config = dataclasses.replace(config, root=root)
    ledger = EmbeddedLedger.open(config)
    try:
        if msp_dir is None:
            org = settings.anchoring.gateway_org
            if settings.ledger.msp_dir:
                msp_dir = Path(settings.ledger.msp_dir)
            else:
                try:
                    msp_dir = ledger.ca.identity_dir(org, EMBEDDED_GATEWAY_NAME)
                except IdentityNotFound:
                    msp_dir = _enroll_embedded_gateway(settings, ledger.ca, org, label)
        else:
            org = _infer_msp(ledger.trust, msp_dir, msp_id)
        folder, signer = load_identity(
            msp_dir, ledger.ca.msp_id(org), pkcs11=settings.pkcs11, key_label=label
        )
    except BaseException:
        ledger.close_sync()
        raise
    try:
        gw = embedded_gateway(
            ledger, msp_dir, org=org, signer=signer, timeouts=ledger_timeouts(settings)
        )
    except BaseException:
        close_signer(signer)
        ledger.close_sync()
        raise
    return _connection(
        "embedded",
        settings,
        gw,
        folder.identity,
        signer,
        channel=config.channel,
        msp_ids=ledger.msp_ids(),
        trust=ledger.trust,
        resolve_org=ledger.ca.msp_id,
        then_close=ledger.close,
    )


def _open_fabric(
    settings: Settings,
    profile: NetworkProfile,
    msp_dir: Path | None,
    msp_id: str | None,
    label: str,
) -> LedgerConnection:
    trust = trust_from_profile(profile)
    if msp_dir is None:
        try:
            org = profile.org(settings.anchoring.gateway_org)
        except KeyError:
            raise ConfigError(
                f"anchoring.gateway_org: {settings.anchoring.gateway_org} is not an org of the "
                "network"
            ) from None
        # Without a configured identity the gateway acts as its org's admin (what
        # `anchorline network up` enrols); production sets ledger.msp_dir.
        msp_dir = Path(settings.ledger.msp_dir or org.admin_msp_dir)
    else:
        org = profile.org(_infer_msp(trust, msp_dir, msp_id))
    folder, signer = load_identity(msp_dir, org.msp_id, pkcs11=settings.pkcs11, key_label=label)
    try:
        gw = from_profile(
            profile, msp_dir, org=org.name, signer=signer, timeouts=ledger_timeouts(settings)
        )
    except BaseException:
        close_signer(signer)
        raise
    return _connection(
        "fabric",
        settings,
        gw,
        folder.identity,
        signer,
        channel=profile.channel,
        msp_ids=tuple(o.msp_id for o in profile.orgs),
        trust=trust,
        resolve_org=lambda name: profile.org(name).msp_id,
    )


def _connection(
    kind: LedgerKind,
    settings: Settings,
    gw: Gateway,
    identity: Identity,
    signer: Signer,
    *,
    channel: str,
    msp_ids: tuple[str, ...],
    trust: TrustStore,
    resolve_org: Callable[[str], str],
    then_close: Callable[[], Awaitable[None]] | None = None,
) -> LedgerConnection:
    """The connection over ``gw``, for either ledger: its ``close()`` closes the gateway,
    then ``then_close`` (the embedded ledger this process opened), then the signer."""

    async def close() -> None:
        await gw.close()
        if then_close is not None:
            await then_close()
        close_signer(signer)

    return LedgerConnection(
        kind=kind,
        channel=channel,
        chaincode=settings.network.chaincode_name,
        gateway=gw,
        identity=identity,
        signer=signer,
        msp_ids=msp_ids,
        trust=trust,
        close=close,
        resolve_org=resolve_org,
    )
