"""The ledger: a typed asyncio client for Fabric's Gateway service, and the embedded ledger.

Where things are (one type per module, mirroring the protocol):

- ``gateway.py`` :class:`Gateway` → ``network.py`` Network → ``contract.py``
  Contract → ``proposal.py`` Proposal → ``transaction.py`` Transaction →
  ``commit.py`` Commit/Status; ``events.py`` chaincode events and checkpoints;
  ``commit_watch.py`` commit statuses from one filtered-block stream per
  channel (CommitStatus calls remain the fallback).
- ``connect.py`` ``from_profile(profile, msp_dir, org=...)``: a Gateway for the
  native network.
- ``transport.py`` the one seam to whatever answers (``grpc_transport.py``
  for a Fabric peer, ``embedded/`` in-process); ``endpoints.py`` failover.
- ``errors.py`` typed errors (AL13xx); ``rpc_status.py`` gRPC error details.
- Message building and parsing are pure functions in ``proposal.py``,
  ``transaction.py``, ``commit.py`` and ``events.py``; signing and identities
  live in :mod:`gateway.identity`.
"""
