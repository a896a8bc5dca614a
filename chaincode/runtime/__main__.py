"""``python -m chaincode.runtime <module>``: serve the module's ``CONTRACTS``.

Exit codes: 0 after SIGTERM/SIGINT, 2 for a usage or configuration error
(one line on stderr says what to fix).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from chaincode.runtime import logs
from chaincode.runtime.contract import Contract
from chaincode.runtime.server import ServerConfigError, config_from_env, serve

USAGE = "usage: python -m chaincode.runtime <python.module.path>  (the module defines CONTRACTS)"


def load_contracts(module_path: str) -> list[Any]:
    module = importlib.import_module(module_path)
    contracts = getattr(module, "CONTRACTS", None)
    if not isinstance(contracts, list | tuple) or not contracts:
        raise ServerConfigError(f"{module_path} must define a non-empty CONTRACTS list")
    for item in contracts:
        klass = item if isinstance(item, type) else type(item)
        if not issubclass(klass, Contract):
            raise ServerConfigError(f"{module_path}.CONTRACTS holds {item!r}, not a Contract")
    return list(contracts)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    logs.configure(os.environ)
    try:
        contracts = load_contracts(args[0])
        config = config_from_env(os.environ)
        asyncio.run(serve(contracts, config))
    except ModuleNotFoundError as exc:
        print(f"chaincode: cannot import {args[0]}: {exc}", file=sys.stderr)
        return 2
    except ServerConfigError as exc:
        print(f"chaincode: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
