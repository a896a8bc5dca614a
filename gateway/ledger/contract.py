"""A chaincode (optionally one contract within it) on a channel.

``evaluate`` reads; ``submit`` endorses, signs, submits and waits for the
commit (raising :class:`~gateway.ledger.errors.CommitError` unless VALID);
``submit_async`` returns once the transaction is accepted for ordering, with
a :class:`~gateway.ledger.commit.Commit` to await; ``new_proposal`` gives the
:class:`~gateway.ledger.proposal.Proposal` for step-by-step or offline use.
Arguments are ``str`` (UTF-8) or ``bytes``.

``timeout`` on ``submit`` is the whole call's budget (endorse + submit +
commit); each stage also keeps its own default deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence

from gateway.ledger.client import Client
from gateway.ledger.commit import Commit
from gateway.ledger.proposal import Proposal
from gateway.ledger.protocol.proposal import Arg, build_proposal


@dataclasses.dataclass(frozen=True)
class SubmitResult:
    """A committed transaction: the chaincode's result, its id and its block."""

    result: bytes
    transaction_id: str
    block_number: int


class Contract:
    """A chaincode on one channel, for one client (``Network.contract`` makes it)."""

    def __init__(
        self, client: Client, channel_id: str, chaincode: str, contract_name: str = ""
    ) -> None:
        self._client = client
        self._channel_id = channel_id
        self.chaincode = chaincode
        self.contract_name = contract_name

    def _function(self, name: str) -> str:
        return f"{self.contract_name}:{name}" if self.contract_name else name

    def new_proposal(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] = (),
    ) -> Proposal:
        """A proposal by this client's identity; unsigned until evaluated, endorsed or signed."""
        client = self._client
        built = build_proposal(
            channel_id=self._channel_id,
            chaincode=self.chaincode,
            function=self._function(function),
            args=args,
            creator=client.creator,
            transient=transient,
        )
        return Proposal(client, built, endorsing_orgs=endorsing_orgs)

    async def evaluate(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, Arg] | None = None,
        target_orgs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> bytes:
        """Run a transaction function on one peer without ordering; its result."""
        proposal = self.new_proposal(function, *args, transient=transient)
        return await proposal.evaluate(target_orgs=target_orgs, timeout=timeout)

    async def submit_async(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> Commit:
        """Endorse and submit; returns once ordering accepted it (``Commit.status()`` to wait)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        proposal = self.new_proposal(
            function, *args, transient=transient, endorsing_orgs=endorsing_orgs
        )
        transaction = await proposal.endorse(timeout=_left(deadline))
        return await transaction.submit(timeout=_left(deadline))

    async def submit(
        self,
        function: str,
        *args: Arg,
        transient: Mapping[str, Arg] | None = None,
        endorsing_orgs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> SubmitResult:
        """Endorse, submit and wait for a VALID commit (else :class:`CommitError`)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        commit = await self.submit_async(
            function,
            *args,
            transient=transient,
            endorsing_orgs=endorsing_orgs,
            timeout=_left(deadline),
        )
        status = await commit.status(timeout=_left(deadline))
        status.raise_for_status()
        return SubmitResult(commit.result, commit.transaction_id, status.block_number)


def _left(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - asyncio.get_running_loop().time(), 0.0)
