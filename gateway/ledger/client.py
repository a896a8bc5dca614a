"""The call machinery under Gateway, Network and Contract.

:class:`Client` holds the identity, the optional signer, the transports
(with failover) and the default deadlines, and runs each Gateway call:
per-call deadline, failover to another peer when one is down, retry of
Endorse on ``FAILED_PRECONDITION`` (a restarted peer whose gossip has not
found the other organisations yet) with backoff within the deadline,
commit status under a deadline (from the channel's filtered-block stream,
:mod:`gateway.ledger.commit_watch`, when it can answer; else a CommitStatus
call) with resubmission of the same signed transaction when it looks lost
(not merely slow: resubmitting under load would only add load), and
translation of every :class:`RpcError` into a typed
:mod:`gateway.ledger.errors` error carrying the transaction id.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fabric_protos.gateway import gateway_pb2

from gateway.identity.msp import Identity
from gateway.identity.signing import Signer
from gateway.ledger.commit_watch import CommitWatcher
from gateway.ledger.endpoints import Failover
from gateway.ledger.errors import (
    CommitStatusError,
    CommitStatusTimeout,
    EndorseError,
    EvaluateError,
    LedgerError,
    LedgerTimeout,
    LedgerUnavailable,
    SignatureRequired,
    StageError,
    SubmitError,
    chaincode_error,
    stage_error,
)
from gateway.ledger.transport import GatewayTransport, RpcError, StatusCode

T = TypeVar("T")

# What a broken connection looks like (a reset stream), as opposed to a peer's answer.
_TRANSPORT_FAILURES = frozenset(
    {StatusCode.CANCELLED.name, StatusCode.UNKNOWN.name, StatusCode.INTERNAL.name}
)

# Orderer statuses that say "try again later" rather than "this transaction is wrong".
_TRANSIENT_ORDERER = ("SERVICE_UNAVAILABLE", "no orderer nodes available")


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """Default deadlines in seconds, per stage."""

    evaluate: float = 5.0
    endorse: float = 15.0
    submit: float = 15.0
    commit_status: float = 30.0
    # One CommitStatus attempt; when it expires a transaction that seems lost is resubmitted.
    commit_attempt: float = 2.0
    # A transaction is taken as lost once one submitted this much later has committed.
    overtaken_after: float = 1.0


def map_rpc_error(
    error: RpcError, stage: type[StageError], transaction_id: str = ""
) -> LedgerError:
    """The typed error for a failed call at ``stage`` (:class:`EndorseError`, …).

    Always an instance of ``stage``; a timeout, an unreachable peer and a
    refused identity are also :class:`LedgerTimeout`, :class:`LedgerUnavailable`
    and :class:`LedgerPermissionDenied` (see :func:`stage_error`).
    """
    name = stage.stage
    where = f" (peer {error.endpoint})" if error.endpoint else ""
    tx = f" of transaction {transaction_id}" if transaction_id else ""
    kind = stage_error(stage, error.status)
    kwargs: dict[str, Any] = {
        "transaction_id": transaction_id,
        "status": error.status.name,
        "peer_details": error.details,
    }
    if error.status == StatusCode.DEADLINE_EXCEEDED:
        return kind(
            f"{name}{tx} did not finish in time{where}: {error.message}; "
            "retry, or raise the deadline",
            **kwargs,
        )
    if error.status == StatusCode.UNAVAILABLE:
        return kind(
            f"{name}{tx}: no peer could be reached{where}: {error.message}; "
            "check that the network is up (anchorline network status)",
            **kwargs,
        )
    if error.status == StatusCode.PERMISSION_DENIED:
        return kind(f"{name}{tx} refused for this identity{where}: {error.message}", **kwargs)
    message = error.message
    for text in (*(d.message for d in error.details), error.message):
        found = chaincode_error(text)
        if found is not None:
            message = f"chaincode error: {found[1]}"
            break
    else:
        if error.details:
            message += "; " + "; ".join(
                f"{d.msp_id or '?'} {d.address}: {d.message}" for d in error.details
            )
    return kind(f"{name}{tx} failed{where}: {message}", **kwargs)


class Client:
    """Identity, signer, transports and deadlines; one per Gateway."""

    def __init__(
        self,
        identity: Identity,
        transports: Failover,
        *,
        signer: Signer | None = None,
        timeouts: Timeouts | None = None,
        watch_commits: bool = True,
    ) -> None:
        self.identity = identity
        self.creator = identity.serialize()
        self.signer = signer
        self.failover = transports
        self.timeouts = timeouts or Timeouts()
        # How often the client had to ride something out, and where commit statuses
        # came from: for logs and benchmarks.
        self.counters: collections.Counter[str] = collections.Counter()
        # Loop time of the last commit status received, and per peer the newest
        # submission time among the transactions it gave a status for (_probably_lost).
        self._last_commit_seen = float("-inf")
        self._newest_committed_submit: dict[str, float] = {}
        # Per channel, the filtered-block stream that answers commit statuses; only
        # with a signer (it signs its own request), and unless turned off.
        self._watch_commits = watch_commits and signer is not None
        self._watchers: dict[str, CommitWatcher] = {}

    def sign_digest(self, digest: bytes, *, what: str, transaction_id: str = "") -> bytes:
        """Sign with the client's signer; :class:`SignatureRequired` when it has none."""
        if self.signer is None:
            raise SignatureRequired(
                f"the {what} must be signed: this client has no signer, so sign its digest() "
                "elsewhere and attach the signature with with_signature()",
                transaction_id=transaction_id,
                step=what,
            )
        return self.signer.sign(digest)

    @staticmethod
    def _remaining(deadline: float) -> float:
        return deadline - asyncio.get_running_loop().time()

    def _deadline(self, timeout: float | None, default: float) -> float:
        return asyncio.get_running_loop().time() + (default if timeout is None else timeout)

    async def _once(
        self,
        stage: type[StageError],
        transaction_id: str,
        deadline: float,
        operation: Callable[[GatewayTransport, float], Awaitable[T]],
    ) -> T:
        remaining = self._remaining(deadline)
        if remaining <= 0:
            raise stage_error(stage, StatusCode.DEADLINE_EXCEEDED)(
                f"{stage.stage} of transaction {transaction_id} ran out of time before it "
                "could start",
                transaction_id=transaction_id,
                status=StatusCode.DEADLINE_EXCEEDED.name,
            )
        try:
            return await self.failover.call(lambda t: operation(t, self._remaining(deadline)))
        except RpcError as exc:
            raise map_rpc_error(exc, stage, transaction_id) from None

    async def evaluate(
        self, request: gateway_pb2.EvaluateRequest, *, timeout: float | None = None
    ) -> gateway_pb2.EvaluateResponse:
        deadline = self._deadline(timeout, self.timeouts.evaluate)
        return await self._once(
            EvaluateError,
            request.transaction_id,
            deadline,
            lambda t, left: t.evaluate(request, timeout=left),
        )

    async def endorse(
        self, request: gateway_pb2.EndorseRequest, *, timeout: float | None = None
    ) -> gateway_pb2.EndorseResponse:
        deadline = self._deadline(timeout, self.timeouts.endorse)
        delay = 0.1
        while True:
            try:
                return await self._once(
                    EndorseError,
                    request.transaction_id,
                    deadline,
                    lambda t, left: t.endorse(request, timeout=left),
                )
            except EndorseError as exc:
                # A restarted peer refuses endorsements until gossip has found the
                # other orgs (1-4 s here): worth waiting for while the deadline allows.
                if exc.status != StatusCode.FAILED_PRECONDITION.name:
                    raise
                if self._remaining(deadline) <= delay:
                    raise
            self.counters["endorse_retry"] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def submit(
        self,
        request: gateway_pb2.SubmitRequest,
        *,
        timeout: float | None = None,
    ) -> gateway_pb2.SubmitResponse:
        """Send a signed transaction for ordering, waiting out a Raft election."""
        deadline = self._deadline(timeout, self.timeouts.submit)
        delay = 0.1
        while True:
            try:
                return await self._once(
                    SubmitError,
                    request.transaction_id,
                    deadline,
                    lambda t, left: t.submit(request, timeout=left),
                )
            except (SubmitError, LedgerUnavailable) as exc:
                # No Raft leader yet (an election in progress) is worth waiting out.
                if not _transient_submit_failure(exc) or self._remaining(deadline) <= delay:
                    raise
            self.counters["submit_retry"] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def note_submitted(self) -> float:
        """The time a transaction was accepted for ordering (for :meth:`commit_status`)."""
        return asyncio.get_running_loop().time()

    def _probably_lost(self, submitted_at: float, peer: str) -> bool:
        # Resubmitting a transaction that is merely queued adds load exactly when the
        # network is slowest. It is probably lost when this same peer has already
        # committed a transaction submitted well after it (the ordering service is
        # first-in first-out, give or take; another peer may simply be behind), or when
        # nothing at all has committed since it was submitted, for a whole attempt (the
        # ordering service stalled: a Raft leader died).
        newest = self._newest_committed_submit.get(peer, float("-inf"))
        if newest > submitted_at + self.timeouts.overtaken_after:
            return True
        now = asyncio.get_running_loop().time()
        quiet_since = max(self._last_commit_seen, submitted_at)
        return now - quiet_since >= self.timeouts.commit_attempt

    def commit_watcher(self, channel_id: str) -> CommitWatcher | None:
        """The channel's filtered-block stream (started on first use), or None."""
        if not self._watch_commits or not channel_id or self.signer is None:
            return None
        watcher = self._watchers.get(channel_id)
        if watcher is None:
            watcher = CommitWatcher(self.failover, channel_id, self.creator, self.signer)
            self._watchers[channel_id] = watcher
        watcher.start()
        return watcher if watcher.enabled else None

    def _committed(self, peer: str, submitted_at: float) -> None:
        self._last_commit_seen = asyncio.get_running_loop().time()
        newest = self._newest_committed_submit.get(peer, float("-inf"))
        self._newest_committed_submit[peer] = max(newest, submitted_at)

    @staticmethod
    def _out_of_time(transaction_id: str, status: str) -> CommitStatusTimeout:
        return CommitStatusTimeout(
            f"no commit status for transaction {transaction_id} before the "
            "deadline; it may still commit: ask again later with its id",
            transaction_id=transaction_id,
            status=status,
        )

    async def commit_status(
        self,
        request: gateway_pb2.SignedCommitStatusRequest
        | Callable[[], gateway_pb2.SignedCommitStatusRequest],
        *,
        transaction_id: str,
        resubmit: gateway_pb2.SubmitRequest | None,
        submitted_at: float | None = None,
        submit_started_at: float | None = None,
        channel_id: str = "",
        timeout: float | None = None,
    ) -> gateway_pb2.CommitStatusResponse:
        """The commit status; ``resubmit`` is sent again when the transaction seems lost.

        Each attempt has its own deadline (``Timeouts.commit_attempt``). The first
        is answered by the channel's filtered-block stream when it covers the
        transaction (its submission began at ``submit_started_at``, after the
        stream was live); otherwise, and for every later attempt, by a
        CommitStatus call (``request``, or a function building it: signing is
        skipped when the stream answers). When an attempt expires and the
        transaction looks lost (see ``_probably_lost``) the same signed
        transaction is submitted again; it can only commit once.
        """
        deadline = self._deadline(timeout, self.timeouts.commit_status)
        submitted_at = self.note_submitted() if submitted_at is None else submitted_at
        watcher = self.commit_watcher(channel_id)
        use_watcher = (
            watcher is not None
            and submit_started_at is not None
            and watcher.covers(submit_started_at)
        )
        asked = ""

        async def ask(transport: GatewayTransport, left: float) -> gateway_pb2.CommitStatusResponse:
            nonlocal asked, request
            if callable(request):
                request = request()
            asked = transport.endpoint
            return await transport.commit_status(request, timeout=left)

        while True:
            attempt_end = min(deadline, self._deadline(None, self.timeouts.commit_attempt))
            if use_watcher and watcher is not None:
                use_watcher = False
                seen = await watcher.wait(transaction_id, self._remaining(attempt_end))
                if seen is not None:
                    self.counters["commit_status_from_blocks"] += 1
                    self._committed(seen.endpoint, submitted_at)
                    return gateway_pb2.CommitStatusResponse(
                        result=seen.code, block_number=seen.block_number
                    )
                asked = watcher.endpoint
                if self._remaining(deadline) <= 0.05:
                    raise self._out_of_time(transaction_id, StatusCode.DEADLINE_EXCEEDED.name)
            else:
                try:
                    response = await self._once(CommitStatusError, transaction_id, attempt_end, ask)
                # Timeouts and unreachable peers are commit status errors too: first.
                except (LedgerTimeout, LedgerUnavailable) as exc:
                    if self._remaining(deadline) <= 0.05:
                        raise self._out_of_time(transaction_id, exc.status) from None
                    if isinstance(exc, LedgerUnavailable):
                        await asyncio.sleep(min(0.2, max(self._remaining(deadline), 0)))
                except CommitStatusError as exc:
                    # Asking again is harmless; a stream reset by the connection is not an answer.
                    if exc.status not in _TRANSPORT_FAILURES or self._remaining(deadline) <= 0.05:
                        raise
                    self.counters["commit_status_retry"] += 1
                    await asyncio.sleep(min(0.1, max(self._remaining(deadline), 0)))
                    continue
                else:
                    self.counters["commit_status_calls"] += 1
                    self._committed(asked, submitted_at)
                    return response
            if resubmit is not None and self._probably_lost(submitted_at, asked):
                self.counters["resubmit"] += 1
                try:
                    await self.submit(resubmit, timeout=max(self._remaining(deadline), 0.01))
                except (SubmitError, LedgerUnavailable, LedgerTimeout) as exc:
                    if not isinstance(exc, LedgerTimeout) and not _transient_submit_failure(exc):
                        raise
                submitted_at = self.note_submitted()

    async def close(self) -> None:
        for watcher in self._watchers.values():
            await watcher.close()
        self._watchers.clear()
        await self.failover.close()


def _transient_submit_failure(error: LedgerError) -> bool:
    if isinstance(error, LedgerUnavailable):
        return True
    text = error.message + " ".join(d.message for d in error.peer_details)
    return any(marker in text for marker in _TRANSIENT_ORDERER)
