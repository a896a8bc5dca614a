"""The embedded ledger: one process playing every org's peer, the orderer and the Gateway service.

:class:`EmbeddedLedger` answers the ``gateway.Gateway`` request messages with
the response messages a Fabric v2.5 peer's Gateway service gives, and fails
with :class:`~gateway.ledger.transport.RpcError` carrying the gRPC status and
message that service gives (see ``internal/pkg/gateway`` in Fabric):

``evaluate(request, *, gateway_msp)``
    The gateway org's peer (or ``target_organizations[0]``) runs the proposal.
    Unpack failure: ``INVALID_ARGUMENT "failed to unpack transaction proposal: …"``;
    refused proposal (bad signature, unknown/revoked/expired creator…):
    ``FAILED_PRECONDITION "evaluate call to endorser returned error: error validating
    proposal: access denied: channel [ch] creator org [Org1MSP]"`` (``creator org
    unknown, creator is malformed`` when the certificate is from no channel CA);
    chaincode error: ``UNKNOWN "evaluate call to endorser returned error: chaincode
    response 500, <message>"``.
``endorse(request, *, gateway_msp)``
    Endorsements from ``endorsing_organizations`` when given (the client then owns
    the policy, as in Fabric), else from the gateway org plus as many other orgs
    as the endorsement policy needs. Refusals are ``ABORTED "failed to endorse
    transaction, see attached details for more info"`` with per-peer details.
``submit(request)``
    The orderer's checks (empty, expired creator, size, Writers signature):
    ``ABORTED "received unsuccessful response from orderer: status=FORBIDDEN, info=…"``.
    Accepted transactions are cut into blocks of ``batch_max_tx`` or after
    ``batch_timeout_s``, validated (:mod:`.validator`) and committed (:mod:`.store`).
``commit_status(request)``
    Waits for the transaction's block; ``PERMISSION_DENIED`` for a request not
    signed by a channel member (the Readers policy) or for an unknown channel.
``chaincode_events(request)``
    Async iterator of ``ChaincodeEventsResponse`` per block with matching events
    of VALID transactions, from ``start_position`` or after ``after_transaction_id``,
    then live.

The messages were checked against a Fabric v2.5.16 network by the scenario suite
(``tests/integration/ledger_scenarios``), which runs the same assertions on both.

Identities: the built-in CA (:class:`gateway.identity.ca.EmbeddedCA`) under
``<root>/ca`` holds each org's CA and its ``peer0`` identity, and an
``Orderer`` org whose ``orderer0`` signs blocks. Clients enrol there too.

The ledger takes an exclusive lock on its folder: one process at a time
(:class:`~gateway.ledger.embedded.server.ServedLedger` lets other processes in
over loopback gRPC). Use it from one asyncio event loop.

Where it differs from a Fabric peer, on purpose or by simplification:

- every chosen org's peer simulates the proposal against the one shared world
  state, back to back, so only a non-deterministic chaincode makes their results
  differ (then "ProposalResponsePayloads do not match", as Fabric's gateway says);
- an expired creator is refused at endorsement ("access denied … creator org
  [X]"); Fabric's gateway lets its own peer endorse for an expired certificate
  and only the orderer refuses it;
- revocation takes effect as soon as the org's CRL file changes; Fabric needs
  the CRL in the channel configuration;
- no ``_lifecycle`` reads in the read/write set, no private data, no
  key-level endorsement, no chaincode-to-chaincode calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import fcntl
import importlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives import serialization
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2
from google.protobuf.message import DecodeError

from gateway.identity.ca import EmbeddedCA
from gateway.identity.certificates import TrustStore
from gateway.identity.errors import IdentityNotFound
from gateway.identity.msp import load_msp
from gateway.ledger.embedded.blocks import genesis_envelope, new_block
from gateway.ledger.embedded.endorser import (
    CheckedProposal,
    Dispatcher,
    EndorserRefusal,
    Peer,
    Simulation,
    check_proposal,
    creator_is_valid,
    deserialize_creator,
    endorse,
    simulate,
)
from gateway.ledger.embedded.errors import EmbeddedConfigError, LedgerClosed, LedgerInUse
from gateway.ledger.embedded.store import BlockStore
from gateway.ledger.embedded.validator import BlockValidator, EndorsementPolicy, PolicyKind
from gateway.ledger.protocol.transaction import assemble_transaction
from gateway.ledger.transport import PeerErrorDetail, RpcError, StatusCode

#: Fabric's default gRPC receive limit for peers (``peer.maxRecvMsgSize``).
DEFAULT_MAX_RECV_BYTES = 100 * 1024 * 1024
#: Fabric's default orderer ``BatchSize.AbsoluteMaxBytes`` (configtx.yaml).
DEFAULT_ABSOLUTE_MAX_BYTES = 99 * 1024 * 1024
ORDERER_ORG = "Orderer"
#: The built-in CA's folder inside the ledger folder.
CA_FOLDER = "ca"
_WRITERS_DENIED = (
    "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy "
    "requires 1 of the 'Writers' sub-policies to be satisfied: permission denied"
)
# The network's Application Readers is a signature policy (network/configtx.py).
_READERS_DENIED = (
    "Failed evaluating policy on signed data during check policy on channel [{channel}] with "
    "policy [/Channel/Application/Readers]: [signature set did not satisfy policy]"
)

#: Contracts of a chaincode, or ``"module:ATTRIBUTE"`` naming them (imported on first use).
ContractsSpec = Sequence[Any] | str


@dataclasses.dataclass(frozen=True)
class EmbeddedConfig:
    """What an embedded ledger is: folder, channel, orgs, chaincodes, batching, policy."""

    root: Path
    channel: str = "anchorline"
    orgs: tuple[str, ...] = ("Org1", "Org2", "Org3")
    chaincodes: Mapping[str, ContractsSpec] = dataclasses.field(default_factory=dict)
    batch_max_tx: int = 100
    batch_timeout_s: float = 0.02
    policy: PolicyKind = "MAJORITY"
    max_recv_bytes: int = DEFAULT_MAX_RECV_BYTES
    absolute_max_bytes: int = DEFAULT_ABSOLUTE_MAX_BYTES

    def __post_init__(self) -> None:
        if not self.orgs:
            raise EmbeddedConfigError("the embedded ledger needs at least one org")
        if self.batch_max_tx < 1 or self.batch_timeout_s <= 0:
            raise EmbeddedConfigError(
                "embedded batching needs batch_max_tx >= 1 and batch_timeout_s > 0"
            )


def _rpc(status: StatusCode, message: str, *details: PeerErrorDetail) -> RpcError:
    return RpcError(status, message, tuple(details))


def _load_contracts(spec: ContractsSpec, name: str) -> Sequence[Any]:
    if not isinstance(spec, str):
        return spec
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        contracts = getattr(module, attribute or "CONTRACTS")
    except (ImportError, AttributeError) as exc:
        raise EmbeddedConfigError(
            f"chaincode {name!r}: cannot load contracts from {spec!r} ({exc})"
        ) from None
    return list(contracts)


def _default_dispatcher() -> Dispatcher:
    from chaincode.runtime.dispatch import dispatch

    return dispatch


class _Waiters:
    """Futures waiting for transaction ids to commit, and a condition for new blocks."""

    def __init__(self) -> None:
        self.by_tx: dict[str, list[asyncio.Future[tuple[int, int]]]] = {}
        self.blocks: asyncio.Event = asyncio.Event()


class EmbeddedLedger:
    """See the module docstring. Create with :meth:`open`; ``await close()`` when done."""

    def __init__(self, config: EmbeddedConfig, *, dispatcher: Dispatcher | None = None) -> None:
        self.config = config
        self.root = Path(config.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_lock()
        try:
            self.ca = EmbeddedCA(self.root / CA_FOLDER)
            self.peers = {p.msp_id: p for p in (self._peer(org) for org in config.orgs)}
            self.trust = TrustStore.from_msp_dirs(
                {self.ca.msp_id(o): self.ca.org_msp_dir(o) for o in config.orgs}
            )
            self._orderer = self._identity(ORDERER_ORG, "orderer0", "orderer")
            self.store = BlockStore(self.root / "ledger.sqlite")
        except BaseException:
            self._release_lock()
            raise
        self.policy = EndorsementPolicy(config.policy, tuple(self.peers))
        self._dispatcher = dispatcher or _default_dispatcher()
        self._contracts: dict[str, Sequence[Any]] = {}
        self.validator = BlockValidator(
            channel_id=config.channel,
            trust=self.trust,
            store=self.store,
            policy=self.policy,
            is_deployed=lambda name: name in config.chaincodes,
        )
        self._pending: list[tuple[str, bytes]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._cutting: asyncio.Task[None] | None = None
        self._state_lock: asyncio.Lock | None = None
        self._waiters: _Waiters | None = None
        self._closed = False
        if self.store.height == 0:
            self._write_genesis()
        stored_channel = self.store.meta("channel")
        if stored_channel != config.channel:
            self.close_sync()
            raise EmbeddedConfigError(
                f"the embedded ledger in {self.root} holds channel {stored_channel!r}, not "
                f"{config.channel!r}: use another folder for another channel"
            )

    @classmethod
    def open(
        cls, config: EmbeddedConfig, *, dispatcher: Dispatcher | None = None
    ) -> EmbeddedLedger:
        """Open (creating on first use) the ledger in ``config.root``."""
        return cls(config, dispatcher=dispatcher)

    # -- set-up ---------------------------------------------------------------------------

    def _take_lock(self) -> TextIO:
        path = self.root / "ledger.lock"
        handle = open(path, "a+")  # noqa: SIM115 - held for the ledger's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LedgerInUse(
                f"the embedded ledger in {self.root} is in use by pid {holder}; stop it or "
                "connect to that process"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _release_lock(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        self._lock_file.close()

    def _identity(self, org: str, name: str, role: str) -> tuple[bytes, Any]:
        try:
            msp_dir = self.ca.identity_dir(org, name)
        except IdentityNotFound:
            msp_dir = self.ca.enroll(org, name, role)
        folder = load_msp(msp_dir, self.ca.msp_id(org), require_key=True)
        return folder.identity.serialize(), folder.signer()

    def _peer(self, org: str) -> Peer:
        creator, signer = self._identity(org, "peer0", "peer")
        msp_id = self.ca.msp_id(org)
        return Peer(msp_id=msp_id, address=f"embedded:{msp_id}", creator=creator, signer=signer)

    def _write_genesis(self) -> None:
        roots = {
            msp_id: [
                c.public_bytes(serialization.Encoding.PEM)
                for c in self.trust.root_certificates(msp_id)
            ]
            for msp_id in self.peers
        }
        envelope = genesis_envelope(self.config.channel, roots)
        creator, signer = self._orderer
        block = new_block(0, b"", [envelope], [0], orderer_creator=creator, orderer_signer=signer)
        self.store.append(block, meta={"channel": self.config.channel})

    def _loop_state(self) -> tuple[asyncio.Lock, _Waiters]:
        if self._closed:
            raise LedgerClosed("the embedded ledger is closed")
        if self._state_lock is None or self._waiters is None:
            self._state_lock = asyncio.Lock()
            self._waiters = _Waiters()
        return self._state_lock, self._waiters

    def contracts(self, chaincode: str) -> Sequence[Any] | None:
        """The contracts deployed as ``chaincode``, or None."""
        if chaincode not in self._contracts:
            spec = self.config.chaincodes.get(chaincode)
            if spec is None:
                return None
            self._contracts[chaincode] = _load_contracts(spec, chaincode)
        return self._contracts[chaincode]

    @property
    def height(self) -> int:
        return self.store.height

    def msp_ids(self) -> tuple[str, ...]:
        return tuple(self.peers)

    # -- Gateway: Evaluate ----------------------------------------------------------------

    def _unpack(self, signed: Any, prefix: str) -> tuple[str, str]:
        """The gateway's own unpacking; ``(channel, chaincode)`` or INVALID_ARGUMENT.

        The messages are protoutil's ("error unmarshalling Proposal: …") and the gateway's.
        """
        if not signed.proposal_bytes:
            raise _rpc(StatusCode.INVALID_ARGUMENT, f"{prefix}a signed proposal is required")
        steps: list[tuple[str, Any, Callable[[Any], bytes]]] = [
            ("Proposal", proposal_pb2.Proposal, lambda _: bytes(signed.proposal_bytes)),
            ("Header", common_pb2.Header, lambda m: bytes(m[0].header)),
            ("ChannelHeader", common_pb2.ChannelHeader, lambda m: bytes(m[1].channel_header)),
            (
                "ChaincodeProposalPayload",
                proposal_pb2.ChaincodeProposalPayload,
                lambda m: bytes(m[0].payload),
            ),
            (
                "ChaincodeInvocationSpec",
                chaincode_pb2.ChaincodeInvocationSpec,
                lambda m: bytes(m[3].input),
            ),
        ]
        parsed: list[Any] = []
        for name, message_type, source in steps:
            try:
                parsed.append(message_type.FromString(source(parsed)))
            except DecodeError as exc:
                raise _rpc(
                    StatusCode.INVALID_ARGUMENT, f"{prefix}error unmarshalling {name}: {exc}"
                ) from None
        channel = str(parsed[2].channel_id)
        spec = parsed[4]
        if not channel:
            raise _rpc(StatusCode.INVALID_ARGUMENT, f"{prefix}no channel id provided")
        if not spec.HasField("chaincode_spec"):
            raise _rpc(
                StatusCode.INVALID_ARGUMENT,
                f"{prefix}no chaincode spec is provided, channel id [{channel}]",
            )
        chaincode = str(spec.chaincode_spec.chaincode_id.name)
        if not chaincode:
            raise _rpc(
                StatusCode.INVALID_ARGUMENT,
                f"{prefix}no chaincode name is provided, channel id [{channel}]",
            )
        return channel, chaincode

    def _check_channel(self, channel: str) -> None:
        if channel != self.config.channel:
            raise _rpc(
                StatusCode.UNAVAILABLE,
                f"failed to get config for channel [{channel}]: could not get last config for "
                f"channel {channel}",
            )

    async def _process(
        self, signed: Any, chaincode: str, peers: int = 1
    ) -> tuple[CheckedProposal, list[Simulation]]:
        """``ProcessProposal`` on ``peers`` peers: the checks, then one simulation per peer.

        The simulations run back to back under the state lock, so every peer sees the
        same committed state and only a non-deterministic chaincode can make them differ.
        """
        state_lock, _ = self._loop_state()
        checked = check_proposal(
            signed, channel_id=self.config.channel, trust=self.trust, store=self.store
        )
        contracts = self.contracts(chaincode)
        if contracts is None:
            raise EndorserRefusal(
                f"make sure the chaincode {chaincode} has been successfully defined on channel "
                f"{self.config.channel} and try again: chaincode {chaincode} not found",
                grpc_error=False,
            )
        simulations = []
        async with state_lock:
            for _ in range(peers):
                simulations.append(
                    await simulate(
                        checked, contracts=contracts, store=self.store, dispatcher=self._dispatcher
                    )
                )
        return checked, simulations

    def _not_deployed(self, chaincode: str, what: str) -> RpcError:
        return _rpc(
            StatusCode.FAILED_PRECONDITION,
            f"no peers available to {what} chaincode {chaincode} in channel {self.config.channel}",
        )

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, *, gateway_msp: str
    ) -> gateway_pb2.EvaluateResponse:
        signed = request.proposed_transaction
        channel, chaincode = self._unpack(signed, "failed to unpack transaction proposal: ")
        self._check_channel(channel)
        if self.contracts(chaincode) is None:
            raise self._not_deployed(chaincode, "evaluate")
        targets = list(request.target_organizations) or [gateway_msp]
        peer = self.peers.get(targets[0])
        if peer is None:
            raise _rpc(
                StatusCode.FAILED_PRECONDITION,
                f"no peers available to evaluate chaincode {chaincode} in channel {channel}",
            )
        detail = PeerErrorDetail(peer.address, peer.msp_id, "")
        try:
            _, (simulation,) = await self._process(signed, chaincode)
        except EndorserRefusal as exc:
            detail = dataclasses.replace(detail, message=exc.message)
            if exc.grpc_error:
                raise _rpc(
                    StatusCode.FAILED_PRECONDITION,
                    f"evaluate call to endorser returned error: {exc.message}",
                    detail,
                ) from None
            raise _rpc(
                StatusCode.ABORTED,
                "failed to evaluate transaction, see attached details for more info",
                detail,
            ) from None
        if simulation.failed:
            message = f"chaincode response {simulation.status}, {simulation.message}"
            raise _rpc(
                StatusCode.UNKNOWN,
                f"evaluate call to endorser returned error: {message}",
                dataclasses.replace(detail, message=message),
            )
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(
                status=simulation.status, message=simulation.message, payload=simulation.payload
            )
        )

    # -- Gateway: Endorse -----------------------------------------------------------------

    def _plan(self, requested: Sequence[str], gateway_msp: str) -> list[Peer]:
        if requested:
            missing = [org for org in requested if org not in self.peers]
            if missing:
                raise _rpc(
                    StatusCode.UNAVAILABLE,
                    f"failed to find any endorsing peers for org(s): {', '.join(missing)}",
                )
            return [self.peers[org] for org in dict.fromkeys(requested)]
        first = self.peers.get(gateway_msp) or next(iter(self.peers.values()))
        chosen = [first]
        for peer in self.peers.values():
            if len(chosen) >= self.policy.required:
                break
            if peer is not first:
                chosen.append(peer)
        return chosen

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, *, gateway_msp: str
    ) -> gateway_pb2.EndorseResponse:
        signed = request.proposed_transaction
        if not signed.proposal_bytes:
            raise _rpc(
                StatusCode.INVALID_ARGUMENT,
                "the proposed transaction must contain a signed proposal",
            )
        channel, chaincode = self._unpack(signed, "")
        self._check_channel(channel)
        if self.contracts(chaincode) is None:
            raise self._not_deployed(chaincode, "endorse")
        plan = self._plan(list(request.endorsing_organizations), gateway_msp)
        explicit = bool(request.endorsing_organizations)
        # Without a choice of orgs the gateway's own peer endorses first, alone: its
        # failure ends the call before any other org is asked (Fabric's planFromFirstEndorser).
        collect = (
            "failed to collect enough transaction endorsements, see attached details for more info"
        )
        first_only = "failed to endorse transaction, see attached details for more info"
        try:
            _, simulations = await self._process(signed, chaincode, peers=len(plan))
        except EndorserRefusal as exc:
            targets = plan if explicit else plan[:1]
            raise _rpc(
                StatusCode.ABORTED,
                collect if explicit else first_only,
                *(PeerErrorDetail(p.address, p.msp_id, exc.message) for p in targets),
            ) from None
        failed = [(p, s) for p, s in zip(plan, simulations, strict=True) if s.failed]
        if failed:
            if not explicit and simulations[0].failed:
                failed = failed[:1]
            raise _rpc(
                StatusCode.ABORTED,
                collect if explicit or not simulations[0].failed else first_only,
                *(
                    PeerErrorDetail(
                        p.address, p.msp_id, f"chaincode response {s.status}, {s.message}"
                    )
                    for p, s in failed
                ),
            )
        reference = simulations[0].response_payload
        mismatched = [
            p for p, s in zip(plan, simulations, strict=True) if s.response_payload != reference
        ]
        if mismatched:
            raise _rpc(
                StatusCode.ABORTED,
                collect,
                *(
                    PeerErrorDetail(p.address, p.msp_id, "ProposalResponsePayloads do not match")
                    for p in mismatched
                ),
            )
        responses = [endorse(s, peer) for peer, s in zip(plan, simulations, strict=True)]
        envelope = assemble_transaction(
            bytes(signed.proposal_bytes), reference, [r.endorsement for r in responses]
        )
        return gateway_pb2.EndorseResponse(prepared_transaction=envelope)

    # -- Gateway: Submit (the orderer) ----------------------------------------------------

    def _broadcast_check(self, envelope: common_pb2.Envelope) -> tuple[str, str]:
        """The orderer's filters; ``(channel, tx_id)`` or ``(status name, info)`` raised."""
        if not envelope.payload:
            raise _BroadcastRefused("BAD_REQUEST", "Message was empty")
        try:
            payload = common_pb2.Payload.FromString(envelope.payload)
            chdr = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            shdr = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        except DecodeError as exc:
            raise _BroadcastRefused(
                "BAD_REQUEST", f"could not determine channel ID: {exc}"
            ) from None
        if chdr.channel_id != self.config.channel:
            raise _BroadcastRefused("NOT_FOUND", "channel does not exist")
        found = deserialize_creator(bytes(shdr.creator), self.trust)
        if found is not None and dt.datetime.now(dt.UTC) > found.certificate.not_valid_after_utc:
            raise _BroadcastRefused("BAD_REQUEST", "broadcast client identity expired")
        size = envelope.ByteSize()
        if size > self.config.absolute_max_bytes:
            raise _BroadcastRefused(
                "BAD_REQUEST",
                f"message payload is {size} bytes and exceeds maximum allowed "
                f"{self.config.absolute_max_bytes} bytes",
            )
        _, valid = creator_is_valid(
            bytes(shdr.creator), bytes(envelope.payload), bytes(envelope.signature), self.trust
        )
        if not valid:
            raise _BroadcastRefused("FORBIDDEN", _WRITERS_DENIED)
        return str(chdr.channel_id), str(chdr.tx_id)

    async def submit(self, request: gateway_pb2.SubmitRequest) -> gateway_pb2.SubmitResponse:
        self._loop_state()
        if not request.HasField("prepared_transaction"):
            raise _rpc(StatusCode.INVALID_ARGUMENT, "a prepared transaction is required")
        envelope = request.prepared_transaction
        if not envelope.signature:
            raise _rpc(StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed")
        if request.channel_id != self.config.channel:
            raise _rpc(
                StatusCode.FAILED_PRECONDITION,
                f"failed to get config for channel [{request.channel_id}]: could not get last "
                f"config for channel {request.channel_id}",
            )
        try:
            _, tx_id = self._broadcast_check(envelope)
        except _BroadcastRefused as exc:
            raise _rpc(
                StatusCode.ABORTED,
                "received unsuccessful response from orderer: "
                f"status={exc.status}, info={exc.info}",
            ) from None
        self._pending.append((tx_id, bytes(envelope.SerializeToString())))
        if len(self._pending) >= self.config.batch_max_tx:
            self._schedule_cut(0)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.config.batch_timeout_s, self._schedule_cut, 0
            )
        return gateway_pb2.SubmitResponse()

    def _schedule_cut(self, _: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._cutting is None or self._cutting.done():
            self._cutting = asyncio.get_running_loop().create_task(self._cut_blocks())

    async def _cut_blocks(self) -> None:
        state_lock, waiters = self._loop_state()
        while self._pending:
            batch = self._pending[: self.config.batch_max_tx]
            del self._pending[: len(batch)]
            async with state_lock:
                self._commit([raw for _, raw in batch], waiters)
            # Let waiting callers run between blocks.
            await asyncio.sleep(0)

    def _commit(self, envelopes: list[bytes], waiters: _Waiters) -> None:
        number = self.store.height
        result = self.validator.validate(number, envelopes)
        creator, signer = self._orderer
        block = new_block(
            number,
            self.store.last_hash,
            envelopes,
            result.codes,
            orderer_creator=creator,
            orderer_signer=signer,
        )
        self.store.append(
            block, transactions=result.transactions, writes=result.writes, events=result.events
        )
        for entry in result.transactions:
            for future in waiters.by_tx.pop(entry.tx_id, []):
                if not future.done():
                    future.set_result((entry.code, number))
        waiters.blocks.set()
        waiters.blocks = asyncio.Event()

    async def flush(self) -> None:
        """Cut and commit every accepted transaction now (tests, shutdown)."""
        if self._pending:
            self._schedule_cut(0)
        if self._cutting is not None:
            await self._cutting

    # -- Gateway: CommitStatus ------------------------------------------------------------

    def _check_reader(self, channel: str, identity: bytes, data: bytes, signature: bytes) -> None:
        """The channel's Readers ACL, checked first as Fabric's gateway does."""
        if channel != self.config.channel:
            raise _rpc(
                StatusCode.PERMISSION_DENIED,
                f"Failed to get policy manager for channel [{channel}]",
            )
        _, valid = creator_is_valid(identity, data, signature, self.trust)
        if not valid:
            raise _rpc(StatusCode.PERMISSION_DENIED, _READERS_DENIED.format(channel=channel))

    async def commit_status(
        self, signed_request: gateway_pb2.SignedCommitStatusRequest
    ) -> gateway_pb2.CommitStatusResponse:
        _, waiters = self._loop_state()
        if not signed_request.request:
            raise _rpc(StatusCode.INVALID_ARGUMENT, "a commit status request is required")
        try:
            request = gateway_pb2.CommitStatusRequest.FromString(signed_request.request)
        except DecodeError as exc:
            raise _rpc(StatusCode.INVALID_ARGUMENT, f"invalid status request: {exc}") from None
        self._check_reader(
            str(request.channel_id),
            bytes(request.identity),
            bytes(signed_request.request),
            bytes(signed_request.signature),
        )
        found = self.store.transaction(request.transaction_id)
        if found is not None:
            block, _, code = found
            return gateway_pb2.CommitStatusResponse(result=code, block_number=block)
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        waiters.by_tx.setdefault(request.transaction_id, []).append(future)
        try:
            code, block = await future
        finally:
            pending = waiters.by_tx.get(request.transaction_id)
            if pending and future in pending:
                pending.remove(future)
                if not pending:
                    del waiters.by_tx[request.transaction_id]
        return gateway_pb2.CommitStatusResponse(result=code, block_number=block)

    # -- Gateway: ChaincodeEvents ---------------------------------------------------------

    async def chaincode_events(
        self, signed_request: gateway_pb2.SignedChaincodeEventsRequest
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        _, waiters = self._loop_state()
        if not signed_request.request:
            raise _rpc(StatusCode.INVALID_ARGUMENT, "a chaincode events request is required")
        try:
            request = gateway_pb2.ChaincodeEventsRequest.FromString(signed_request.request)
        except DecodeError as exc:
            raise _rpc(
                StatusCode.INVALID_ARGUMENT, f"invalid chaincode events request: {exc}"
            ) from None
        self._check_reader(
            str(request.channel_id),
            bytes(request.identity),
            bytes(signed_request.request),
            bytes(signed_request.signature),
        )
        return self._event_stream(request, waiters)

    def _start_block(self, request: gateway_pb2.ChaincodeEventsRequest) -> int:
        if request.after_transaction_id:
            found = self.store.transaction(request.after_transaction_id)
            if found is not None:
                return found[0]
        position = request.start_position
        kind = position.WhichOneof("Type") if request.HasField("start_position") else None
        if kind == "specified":
            return int(position.specified.number)
        if kind not in (None, "next_commit"):
            raise _rpc(
                StatusCode.INVALID_ARGUMENT,
                f"invalid start position type: *orderer.SeekPosition_{kind.capitalize()}",
            )
        return self.store.height

    async def _event_stream(
        self, request: gateway_pb2.ChaincodeEventsRequest, waiters: _Waiters
    ) -> AsyncIterator[gateway_pb2.ChaincodeEventsResponse]:
        from fabric_protos.peer import chaincode_event_pb2

        next_block = self._start_block(request)
        after = request.after_transaction_id
        passed = not after
        while True:
            if self._closed:
                raise _rpc(StatusCode.UNAVAILABLE, "the embedded ledger was closed")
            if next_block >= self.store.height:
                event = waiters.blocks
                if next_block >= self.store.height:
                    await event.wait()
                    continue
            stored = self.store.events(next_block)
            scanned_to = min(self.store.height, next_block + 64)
            by_block: dict[int, list[Any]] = {}
            for item in stored:
                event_pb = chaincode_event_pb2.ChaincodeEvent.FromString(item.data)
                if not passed:
                    if event_pb.tx_id == after:
                        passed = True
                    continue
                if event_pb.chaincode_id == request.chaincode_id:
                    by_block.setdefault(item.block, []).append(event_pb)
            for number in sorted(by_block):
                yield gateway_pb2.ChaincodeEventsResponse(
                    block_number=number, events=by_block[number]
                )
            next_block = scanned_to

    # -- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit what was accepted, then release the folder."""
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(RuntimeError):
            await self.flush()
        self._closed = True
        if self._waiters is not None:
            self._waiters.blocks.set()
        self.store.close()
        self._release_lock()

    def close_sync(self) -> None:
        """Release the folder without committing pending transactions (no event loop needed)."""
        if not self._closed:
            self._closed = True
            self.store.close()
            self._release_lock()


class _BroadcastRefused(Exception):
    def __init__(self, status: str, info: str) -> None:
        super().__init__(info)
        self.status = status
        self.info = info
