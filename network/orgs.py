"""Adding an org to the running native network (``anchorline network add-org``).

The steps, each recorded in ``state.json`` (``added_orgs``) once done, so an
interrupted ``add-org`` resumes where it stopped when run again:

1. ``started``: the org's Fabric CA runs (made the same way as the first orgs').
2. ``identities``: its peer (ecert and TLS) and its admin are enrolled from that
   CA; its channel MSP folder and CRL are written. Members are enrolled later
   with ``network enroll --org <name>``.
3. ``in-channel``: one channel configuration update adds the org's group (MSP,
   its own policies, its anchor peer) and rewrites every signature policy that
   lists the orgs, both taken from the configuration configtxgen makes for the
   grown topology (:func:`network.configtx.configuration_for`,
   :func:`network.channel.with_added_org`). The Application group's ``Admins``
   policy is MAJORITY Admins, so the admins of a majority of the existing orgs
   (Org1 and Org2 of three) sign; the last of them submits.
4. ``member``: its peer runs, joins the channel from block 0 fetched from the
   orderer and catches up; every deployed chaincode is installed on it, served
   for it and approved for the org at the committed sequence (the definitions
   name no orgs: their endorsement policy is the channel's ``Endorsement``,
   rewritten in step 3, so no new sequence is needed); every peer's Gateway
   endorses across orgs, the new org's included. Only then is the connection
   profile rewritten with the org, which is what a running gateway watches to
   trust the org's members without a restart.

A failure before step 3 leaves nothing the channel knows of: the next run
starts the org afresh (new CA, new identities). From step 3 on, the org is in
the channel and the next run carries on from the recorded step.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fabric_protos.common import configtx_pb2

from network import configtx, nodes, peercli
from network.channel import application_orgs, update_channel, with_added_org
from network.errors import ChaincodeError, CommandFailed
from network.lifecycle import Lifecycle
from network.processes import Running, read_pid, stop
from network.profile import build_profile
from network.state import ADD_ORG_STEPS, NetworkState
from network.topology import Topology


def _done(state: NetworkState, name: str, step: str) -> bool:
    current = state.added_orgs.get(name)
    return current is not None and ADD_ORG_STEPS.index(current) >= ADD_ORG_STEPS.index(step)


def _record(lc: Lifecycle, state: NetworkState, name: str, step: str) -> None:
    state.added_orgs[name] = step
    state.save(lc.layout.state_file)


def add_org(
    lc: Lifecycle,
    before: Topology,
    state: NetworkState,
    name: str,
    alive: dict[str, int],
    started: list[Running],
) -> None:
    """Make ``name`` (the last peer org of ``lc.topology``) a member of the channel.

    ``before`` is the topology of the orgs already in the channel; every process this
    call starts is appended to ``started`` at once (the caller stops them on failure).
    """
    t, lay = lc.topology, lc.layout
    org = t.org(name)
    peer = t.peer_of(org.name)
    channel = t.channel
    if not _done(state, name, "identities"):
        # Nothing of it is in the channel yet: start from a clean slate, a new CA too.
        ca_pid = read_pid(lay.pid_file(org.ca.name))
        if ca_pid is not None:
            stop([Running(org.ca.name, ca_pid)])
            alive.pop(org.ca.name, None)
        for leftover in (lay.org_dir(org.slug), lay.node_data(peer.name), lay.ccaas_dir(peer.name)):
            shutil.rmtree(leftover, ignore_errors=True)
        _record(lc, state, name, "started")
    specs = {s.name: s for s in lc.node_specs(create=True)}
    cc_specs = [s for s in lc.chaincode_specs(state) if s.name.endswith(f".{peer.name}")]
    new = [specs[org.ca.name], specs[peer.name], *cc_specs]
    lc.check_ports([s for s in new if s.name not in alive], state)

    with lc.step(f"{org.ca.name}: certificate authority for {org.name}"):
        lc.readiness.cas(lc.start([specs[org.ca.name]], alive, started))
    if not _done(state, name, "identities"):
        with lc.step(f"identities from {org.ca.name} ({peer.name} with TLS, admin)"):
            lc.issue_org(org)
            _record(lc, state, name, "identities")

    if not _done(state, name, "in-channel"):
        signers = before.peer_orgs[: len(before.peer_orgs) // 2 + 1]
        names = [o.name for o in signers]
        who = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        with lc.step(
            f"channel update: {org.msp_id} and its anchor peer added, signature policies "
            f"rewritten, signed by the {who} admins"
        ):
            with tempfile.TemporaryDirectory(dir=lay.root, prefix=".configtx-") as tmp:
                target = configtx.configuration_for(
                    lc.install,
                    lay,
                    t,
                    lc.settings.network.batch_timeout_ms,
                    lc.settings.network.raft_tick_ms,
                    lc.env_path,
                    Path(tmp),
                )

            def edit(config: configtx_pb2.Config) -> configtx_pb2.Config | None:
                # Already there: an earlier run submitted the update and stopped after.
                if org.msp_id in application_orgs(config):
                    return None
                return with_added_org(config, target, org.msp_id)

            update_channel(
                lc.install,
                lay,
                before,
                edit,
                f"add {org.msp_id}",
                signers=signers,
                orderer_args=lc.orderer_args(),
                env_path=lc.env_path,
            )
            _record(lc, state, name, "in-channel")

    with lc.step(f"{peer.name}: start, join channel '{channel}' from block 0, catch up"):
        lc.readiness.nodes(lc.start([specs[peer.name]], alive, started))
        if nodes.height(peer.ops_port, channel) is None:
            with tempfile.TemporaryDirectory(dir=lay.root, prefix=".join-") as tmp:
                block = peercli.fetch_block(
                    lc.install,
                    lay,
                    t,
                    org.name,
                    lc.env_path,
                    0,
                    Path(tmp) / "block0.block",
                    lc.orderer_args(),
                )
                try:
                    peercli.peer_join(lc.install, lay, t, org.name, lc.env_path, block)
                except CommandFailed as exc:
                    # Joined by an earlier run whose height the peer does not report yet.
                    if "already exists" not in exc.message:
                        raise
        target_height = max(nodes.height(p.ops_port, channel) or 0 for p in before.peers)
        lc.readiness.wait(
            f"{peer.name} to catch up to block {target_height - 1}",
            lambda: (nodes.height(peer.ops_port, channel) or 0) >= target_height,
            started,
        )

    index = t.peers.index(peer)
    orderer = lc.orderer_args()
    for cc_name, entry in sorted(state.chaincodes.items()):
        with lc.step(f"chaincode {cc_name}: served for {peer.name}, installed, approved"):
            package = lay.packages_dir / f"{entry.label}.tar.gz"
            if not package.is_file():
                raise ChaincodeError(
                    f"the package of {cc_name} ({package}) is gone: deploy it again with "
                    "`anchorline network deploy-chaincode`, then re-run add-org"
                )
            lc.write_connection(entry, index)
            server = f"cc.{cc_name}.{peer.name}"
            lc.start([s for s in cc_specs if s.name == server], alive, started)
            lc.install_on(org, cc_name, package)
            # Approving the same definition twice is refused by the channel (the second
            # approval is validated against LifecycleEndorsement): ask first.
            if lc.approved(org, cc_name, entry.sequence) != entry.package_id:
                lc.approve_for(org, cc_name, entry.package_id, entry.sequence, orderer)

    with lc.step("Gateway endorsing across orgs on every peer"):
        lc.readiness.gateway(started)
        for cc_name in state.chaincodes:
            lc.readiness.chaincode(cc_name, started)
    build_profile(lay, t).save(lay.profile_file)
    _record(lc, state, name, "member")
