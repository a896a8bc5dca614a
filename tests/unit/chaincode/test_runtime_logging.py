"""Defect (f): importing the runtime leaves logging alone; payloads are never logged."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_the_shim_alone_switches_the_root_logger_to_debug():
    # The defect, shown in a clean interpreter.
    out = _python(
        """
        import logging
        import fabric_chaincode_python.fabric_shim.handler
        print(logging.getLogger().level, len(logging.getLogger().handlers))
        """
    )
    assert out == "10 1"


def test_importing_the_runtime_leaves_the_root_logger_as_it_was():
    out = _python(
        """
        import logging
        logging.getLogger().setLevel(logging.ERROR)
        import chaincode.runtime
        print(logging.getLogger().level, len(logging.getLogger().handlers),
              logging.getLogger("asyncio").level)
        """
    )
    assert out == "40 0 30"


def test_server_logging_is_info_without_the_shim_payload_logger():
    out = _python(
        """
        import logging
        from chaincode.runtime import logs
        logs.configure({})
        print(logging.getLogger().level, logging.getLogger("asyncio").level)
        logs.configure({"CHAINCODE_LOG_LEVEL": "debug"})
        print(logging.getLogger().level, logging.getLogger("asyncio").level)
        """
    )
    assert out.splitlines() == ["20 30", "10 30"]
