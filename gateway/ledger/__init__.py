"""The ledger: a typed asyncio client for Fabric's Gateway service, and the embedded ledger.

Where things are (one type per module, mirroring the protocol):

- ``gateway.py`` :class:`Gateway` → ``network.py`` Network → ``contract.py``
  Contract → ``proposal.py`` Proposal → ``transaction.py`` Transaction →
  ``commit.py`` Commit/Status; ``events.py`` chaincode event streams and
  checkpointers; ``commit_watch.py`` commit statuses from one filtered-block
  stream per channel (CommitStatus calls remain the fallback). Each step
  exposes ``bytes()``/``digest()``/``with_signature`` for offline signing.
- ``protocol/`` Fabric's messages as pure functions (proposal, transaction
  envelope, commit status, chaincode events, Deliver), shared by the client
  and the embedded peer.
- ``connection.py`` :func:`open_ledger(settings) <gateway.ledger.connection.open_ledger>`:
  the ledger the settings name, for one identity, as a ``LedgerConnection``;
  ``from_profile`` and friends for a Fabric network held elsewhere;
  ``embedded_client.py`` Gateways over an embedded ledger (``embedded_gateway``, …).
- ``profile.py`` the network profile (``network/`` writes it, the client reads it).
- ``transport.py`` the one seam to whatever answers (``grpc_transport.py``
  for a Fabric peer, ``embedded/`` in-process); ``endpoints.py`` failover.
- ``errors.py`` typed errors, one per stage (AL13xx); ``rpc_status.py`` gRPC
  error details.
- Signing and identities live in :mod:`gateway.identity`.

Dependencies run one way: protocol ← client objects ← connection; the
embedded ledger uses protocol and the transport seam only.
"""
