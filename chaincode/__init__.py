"""Anchorline's chaincode (anchor, settlement and access contracts) and its runtime.

``chaincode.CONTRACTS`` is the whole chaincode, so ``anchorline network
deploy-chaincode chaincode/`` serves this package. It is loaded on first
access only, so importing :mod:`chaincode.runtime` alone stays light.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "CONTRACTS":
        from chaincode.anchorline import CONTRACTS

        return CONTRACTS
    raise AttributeError(f"module 'chaincode' has no attribute {name!r}")
