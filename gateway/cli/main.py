"""Entry point of the ``anchorline`` command.

Each subcommand lives in its own module under ``gateway.cli`` and exposes
``register(subparsers)``; the module is imported here so ``--help`` lists it.
A subcommand returns an exit code; an :class:`AnchorlineError` becomes one
line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from gateway.errors import AnchorlineError

# Modules that contribute subcommands, in the order --help shows them.
_COMMAND_MODULES = (
    "gateway.cli.doctor",
    "gateway.cli.network",
    "gateway.cli.gateway",
    "gateway.cli.config",
    "gateway.cli.demo",
    "gateway.cli.verify",
    "gateway.cli.audit",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anchorline",
        description="Live consortium events anchored on Hyperledger Fabric.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except AnchorlineError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
