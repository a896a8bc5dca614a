"""Logging for a chaincode server process.

Defect (f), second half: the shim leaves the process at DEBUG with payloads
logged (the import-time part is undone in :mod:`chaincode.runtime._shim`). A
server logs at INFO (``CHAINCODE_LOG_LEVEL`` may say otherwise) with one line
per event worth knowing (start, peer connected, stream state, failures) and
never a payload, argument or state value.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from chaincode.runtime._shim import SHIM_LOGGER_NAME

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(env: Mapping[str, str]) -> None:
    level_name = env.get("CHAINCODE_LOG_LEVEL", "INFO").upper()
    level = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr, force=True)
    # The shim logs proposals and state values at INFO on this logger, whatever our level.
    logging.getLogger(SHIM_LOGGER_NAME).setLevel(logging.WARNING)
    logging.getLogger("grpc").setLevel(max(level, logging.INFO))
