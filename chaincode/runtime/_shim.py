"""The one place that imports ``fabric-chaincode-python`` 2.5.4 for its side effects.

Defect (f): importing ``fabric_shim.logging`` (which every shim module does)
calls ``logging.basicConfig(level=DEBUG)``: the root logger of whatever process
imports the chaincode (a chaincode server, or the gateway running the embedded
ledger) is switched to DEBUG with a stderr handler, and the shim then logs every
proposal, payload and state value at INFO on the ``asyncio`` logger. We cannot
stop the import doing it, so this module imports the shim once, restores the
root logger exactly as it was before, and raises the ``asyncio`` logger to
WARNING so payloads never reach a log. Everything in ``chaincode.runtime``
imports the shim through here.
"""

from __future__ import annotations

import logging

_root = logging.getLogger()
_saved_level = _root.level
_saved_handlers = list(_root.handlers)

from fabric_chaincode_python.fabric_contract_api.contractapi import (  # noqa: E402
    transaction_context as transaction_context,
)
from fabric_chaincode_python.fabric_shim import handler as handler  # noqa: E402
from fabric_chaincode_python.fabric_shim import interfaces as interfaces  # noqa: E402
from fabric_chaincode_python.fabric_shim import msg_queue_handler as msg_queue_handler  # noqa: E402
from fabric_chaincode_python.fabric_shim import stub as stub  # noqa: E402

for _h in list(_root.handlers):
    if _h not in _saved_handlers:
        _root.removeHandler(_h)
_root.setLevel(_saved_level)

#: The shim's own logger (it borrowed the name ``asyncio``); payloads go to it at INFO.
SHIM_LOGGER_NAME = "asyncio"
logging.getLogger(SHIM_LOGGER_NAME).setLevel(logging.WARNING)

__all__ = ["handler", "interfaces", "msg_queue_handler", "stub", "transaction_context"]
