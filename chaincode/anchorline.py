"""The Anchorline chaincode: one package, three contracts.

Served with ``python -m chaincode.runtime chaincode.anchorline``; the embedded
ledger runs ``CONTRACTS`` through :func:`chaincode.runtime.dispatch`. Function
names are ``anchor:*`` (the default contract), ``settlement:*`` and
``access:*``; each contract module documents its functions.
"""

from __future__ import annotations

from chaincode.contracts.access import AccessContract
from chaincode.contracts.anchor import AnchorContract
from chaincode.contracts.settlement import SettlementContract

CONTRACTS = [AnchorContract, SettlementContract, AccessContract]
