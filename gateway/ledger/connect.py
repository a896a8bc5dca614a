"""Build a :class:`~gateway.ledger.gateway.Gateway` for the native network.

- :func:`endpoints_from_profile` — every org's peer as an
  :class:`~gateway.ledger.endpoints.Endpoint` (TLS CA from the profile, server
  name override), the given org's peer first.
- :func:`from_profile` — a Gateway for the member whose MSP folder is
  ``msp_dir`` in org ``org``, over gRPC to all the peers (own org first). The
  signer is the folder's key unless ``signer`` is given; ``offline=True``
  makes a gateway with no signer at all (every step signed elsewhere).
  Pass ``transports`` (from :func:`transports_from_profile`) to share
  connections between several gateways; they are then not closed with it.
- :func:`transports_from_profile` — one reusable gRPC transport per peer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.identity.msp import load_msp
from gateway.identity.signing import Signer
from gateway.ledger.client import Timeouts
from gateway.ledger.endpoints import Endpoint, own_org_first
from gateway.ledger.gateway import Gateway
from gateway.ledger.grpc_transport import GrpcTransport
from gateway.ledger.transport import GatewayTransport

if TYPE_CHECKING:
    from network.profile import NetworkProfile


def _profile(profile: NetworkProfile | str | Path) -> NetworkProfile:
    if isinstance(profile, str | Path):
        from network.profile import NetworkProfile

        return NetworkProfile.load(Path(profile))
    return profile


def endpoints_from_profile(profile: NetworkProfile | str | Path, msp_id: str) -> list[Endpoint]:
    """Each org's peer; ``msp_id``'s own peer first."""
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
    """A Gateway for the member in ``msp_dir`` of ``org`` (name like "Org1" or MSP id)."""
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
