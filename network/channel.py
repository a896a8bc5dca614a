"""Channel creation and channel configuration updates.

Creation: every orderer joins with ``osnadmin channel join`` on its admin
endpoint (mutual TLS), then every peer with ``peer channel join`` (see
:mod:`network.peercli`). The genesis block already carries the anchor peers
and orderer endpoints, so no further update is needed to form the consortium.

Updates: :func:`update_channel` fetches the channel configuration, has a pure
function edit it, computes the update with ``configtxlator``, has each signing
org's admin sign it and the last one submit it, and waits until the peers have
it. Two edits use it:

- :func:`publish_crl` puts an org's CRL into the org's MSP definition, so Fabric
  peers themselves refuse the revoked certificates (the gateway reads the same
  CRL from the profile's ``crl_path``). Changing an org's MSP needs only that
  org's admin signature (the org group's ``Admins`` policy), so one org can
  publish its revocations alone.
- :func:`with_added_org` (``network add-org``) adds an org's group (MSP, its own
  policies, anchor peer) to the Application group and rewrites every signature
  policy that lists the orgs (see :mod:`network.configtx`), taking both from a
  configuration configtxgen made for the grown topology. The Application
  group's ``Admins`` policy is MAJORITY Admins, so a majority of the existing
  orgs' admins sign.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fabric_protos.common import common_pb2, configtx_pb2, policies_pb2
from fabric_protos.msp import msp_config_pb2, msp_principal_pb2

from network import nodes, peercli
from network.errors import ChannelError
from network.install import FabricInstall
from network.layout import Layout
from network.topology import OrgSpec, Topology


def config_from_block(block_bytes: bytes) -> configtx_pb2.Config:
    """The channel configuration carried by a config block (genesis or later)."""
    block = common_pb2.Block.FromString(block_bytes)
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config


def with_revocation_list(
    config: configtx_pb2.Config, msp_id: str, crls: list[bytes]
) -> configtx_pb2.Config:
    """A copy of ``config`` whose ``msp_id`` MSP carries exactly ``crls`` (PEM)."""
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    value = updated.channel_group.groups["Application"].groups[msp_id].values["MSP"]
    msp = msp_config_pb2.MSPConfig.FromString(value.value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    del fabric.revocation_list[:]
    fabric.revocation_list.extend(crls)
    msp.config = fabric.SerializeToString()
    value.value = msp.SerializeToString()
    return updated


def revocation_list(config: configtx_pb2.Config, msp_id: str) -> list[bytes]:
    value = config.channel_group.groups["Application"].groups[msp_id].values["MSP"]
    msp = msp_config_pb2.MSPConfig.FromString(value.value)
    return list(msp_config_pb2.FabricMSPConfig.FromString(msp.config).revocation_list)


def update_envelope(channel: str, config_update: bytes) -> bytes:
    """The unsigned CONFIG_UPDATE envelope that ``peer channel update`` signs and sends."""
    header = common_pb2.ChannelHeader(type=common_pb2.CONFIG_UPDATE, channel_id=channel)
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=header.SerializeToString()),
        data=configtx_pb2.ConfigUpdateEnvelope(config_update=config_update).SerializeToString(),
    )
    return bytes(common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString())


def signature_principals(policy: policies_pb2.Policy) -> list[str]:
    """``'<MSP id>.<role>'`` for each principal of a signature policy ([] for another type)."""
    if policy.type != policies_pb2.Policy.SIGNATURE:
        return []
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy.value)
    out = []
    for principal in envelope.identities:
        if principal.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
            continue
        role = msp_principal_pb2.MSPRole.FromString(principal.principal)
        name = msp_principal_pb2.MSPRole.MSPRoleType.Name(role.role).lower()
        out.append(f"{role.msp_identifier}.{name}")
    return out


def application_orgs(config: configtx_pb2.Config) -> list[str]:
    """The MSP ids of the channel's application orgs."""
    return sorted(config.channel_group.groups["Application"].groups)


def org_wide_policies(config: configtx_pb2.Config) -> dict[str, policies_pb2.Policy]:
    """Every signature policy outside the orgs' own groups that names all application orgs,
    by path (``Application/Endorsement``): the ones adding an org must rewrite."""
    orgs = set(application_orgs(config))
    found: dict[str, policies_pb2.Policy] = {}

    def walk(group: configtx_pb2.ConfigGroup, path: str) -> None:
        for name, entry in group.policies.items():
            named = {p.split(".")[0] for p in signature_principals(entry.policy)}
            if orgs and orgs <= named:
                found[f"{path}{name}"] = entry.policy
        for name, sub in group.groups.items():
            if name not in orgs:  # an org's own policies name that org alone
                walk(sub, f"{path}{name}/")

    walk(config.channel_group, "")
    return found


def _group_at(config: configtx_pb2.Config, path: str) -> configtx_pb2.ConfigGroup:
    group = config.channel_group
    for part in path.split("/")[:-1]:
        group = group.groups[part]
    return group


def with_added_org(
    config: configtx_pb2.Config, target: configtx_pb2.Config, msp_id: str
) -> configtx_pb2.Config:
    """A copy of ``config`` with ``target``'s ``msp_id`` group in its Application group and
    every org-wide signature policy (:func:`org_wide_policies`) replaced by ``target``'s.

    ``target`` is a configuration made for the grown set of orgs (configtxgen). The
    other orgs' groups stay as they are in ``config`` (their CRLs included).
    :class:`ChannelError` if the org is already there, if ``target`` lacks it, or if
    a policy to rewrite is missing from ``target`` or does not name the new org there.
    """
    if msp_id in application_orgs(config):
        raise ChannelError(f"{msp_id} is already an application org of the channel")
    if msp_id not in application_orgs(target):
        raise ChannelError(f"the configuration made for the new org lacks {msp_id}")
    updated = configtx_pb2.Config()
    updated.CopyFrom(config)
    app = updated.channel_group.groups["Application"]
    app.groups[msp_id].CopyFrom(target.channel_group.groups["Application"].groups[msp_id])
    wanted = org_wide_policies(target)
    for path in org_wide_policies(config):
        policy = wanted.get(path)
        if policy is None or not any(
            p.startswith(f"{msp_id}.") for p in signature_principals(policy)
        ):
            raise ChannelError(f"no policy {path} naming {msp_id} in the configuration made for it")
        name = path.rsplit("/", 1)[-1]
        _group_at(updated, path).policies[name].policy.CopyFrom(policy)
    return updated


Edit = Callable[[configtx_pb2.Config], configtx_pb2.Config | None]


def update_channel(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    edit: Edit,
    what: str,
    *,
    signers: Sequence[OrgSpec],
    orderer_args: list[str],
    env_path: str,
    timeout: float = 30,
) -> bool:
    """Apply ``edit`` to the channel configuration; wait until every peer of ``topology``
    has committed it.

    ``edit`` gets the current configuration and returns the wanted one, or None when
    nothing needs to change (then nothing is sent and this returns False). Every org
    of ``signers`` signs the update with its admin identity; the last one submits it.
    """
    if not signers:
        raise ChannelError("a channel update needs at least one signing org")
    configtxlator = install.binary("configtxlator")
    if not os.access(configtxlator, os.X_OK):
        raise ChannelError(f"{configtxlator} is missing: it is needed to update the channel")

    def admin(org: OrgSpec) -> dict[str, str]:
        return peercli.admin_env(install, layout, topology, org.name, env_path)

    peer_bin = str(install.binary("peer"))
    channel = topology.channel
    with tempfile.TemporaryDirectory(dir=layout.root, prefix=".config-update-") as tmp:
        work = Path(tmp)
        fetch = [peer_bin, "channel", "fetch", "config", str(work / "config.block")]
        peercli.run(
            [*fetch, "-c", channel, *orderer_args],
            admin(signers[-1]),
            "fetch the channel configuration",
        )
        original = config_from_block((work / "config.block").read_bytes())
        updated = edit(original)
        if updated is None:
            return False
        (work / "original.pb").write_bytes(original.SerializeToString())
        (work / "updated.pb").write_bytes(updated.SerializeToString())
        peercli.run(
            [
                str(configtxlator),
                "compute_update",
                "--channel_id",
                channel,
                "--original",
                str(work / "original.pb"),
                "--updated",
                str(work / "updated.pb"),
                "--output",
                str(work / "update.pb"),
            ],
            {"PATH": env_path},
            "compute the channel update",
        )
        update_tx = str(work / "update.tx")
        (work / "update.tx").write_bytes(
            update_envelope(channel, (work / "update.pb").read_bytes())
        )
        for org in signers[:-1]:
            peercli.run(
                [peer_bin, "channel", "signconfigtx", "-f", update_tx],
                admin(org),
                f"sign the update ({what}) as {org.name}'s admin",
            )
        before = max(nodes.height(p.ops_port, channel) or 0 for p in topology.peers)
        peercli.run(
            [peer_bin, "channel", "update", "-f", update_tx, "-c", channel, *orderer_args],
            admin(signers[-1]),
            f"{what} in channel {channel}",
        )
    deadline = time.monotonic() + timeout
    while any((nodes.height(p.ops_port, channel) or 0) <= before for p in topology.peers):
        if time.monotonic() > deadline:
            raise ChannelError(f"the peers did not commit the configuration update in {timeout} s")
        time.sleep(0.05)
    return True


def publish_crl(
    install: FabricInstall,
    layout: Layout,
    topology: Topology,
    org: OrgSpec,
    orderer_args: list[str],
    env_path: str,
    timeout: float = 30,
) -> bool:
    """Put ``org``'s current CRL into the channel; wait until every peer has the new config.

    Returns False when the channel already carries exactly this CRL.
    """
    crl = layout.crl_file(org.slug).read_bytes()

    def edit(config: configtx_pb2.Config) -> configtx_pb2.Config | None:
        if revocation_list(config, org.msp_id) == [crl]:
            return None
        return with_revocation_list(config, org.msp_id, [crl])

    return update_channel(
        install,
        layout,
        topology,
        edit,
        f"update {org.msp_id}'s revocation list",
        signers=[org],
        orderer_args=orderer_args,
        env_path=env_path,
        timeout=timeout,
    )
