"""Fabric's messages, built and parsed by pure functions (no I/O, no client state).

What a Fabric client and a Fabric peer agree on, written once and shared by the
client object graph (:mod:`gateway.ledger.proposal`, ``transaction``, ``commit``,
``events``, ``commit_watch``) and the embedded peer (:mod:`gateway.ledger.embedded`):

- :mod:`.proposal` — ``peer.Proposal``: nonce, transaction id, build and parse;
- :mod:`.transaction` — proposal responses and transaction envelopes: build, assemble, parse;
- :mod:`.commit` — the commit status request, validation code names;
- :mod:`.events` — chaincode events, checkpoints, the events request and response;
- :mod:`.deliver` — the Deliver seek envelope and filtered-block statuses;
- :mod:`.config` — the channel configuration in config blocks, its MSPs' CRLs.

Nothing here imports the rest of :mod:`gateway.ledger`; it may import
:mod:`gateway.errors` and :mod:`gateway.identity` (hashing and signing).
"""
