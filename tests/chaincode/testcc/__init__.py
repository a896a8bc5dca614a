"""The tiny test chaincode deployed by the ``testcc`` fixture (see tests/conftest.py).

Transactions of the default contract ``testcc`` (callable without the prefix):

- ``Put(key, value)``: writes ``value`` (UTF-8) at ``key``; returns nothing.
- ``Get(key)``: the value at ``key``; a ``not_found`` chaincode error if missing.
- ``Fail(message)``: always refuses with a chaincode error carrying ``message``.
- ``PutWithEvent(key, value)``: writes like Put and emits the chaincode event
  ``put`` with JSON payload ``{"key": ..., "value": ...}``.
- ``Increment(key)``: reads the integer at ``key`` (0 when missing), writes it
  plus one and returns the new value (a read-modify-write, for MVCC tests).
- ``Creator()``: JSON ``{"msp_id": ..., "fingerprint": ...}`` of the creator
  (fingerprint = hex SHA-256 of the certificate's DER).
"""

from tests.chaincode.testcc.contract import CONTRACTS, KeyValueContract

__all__ = ["CONTRACTS", "KeyValueContract"]
