"""The ledger's dependency rules, read from the source: one way, no cycles.

- ``gateway.ledger.protocol`` imports nothing else of ``gateway.ledger``;
- the embedded ledger reaches the rest of ``gateway.ledger`` only through the
  protocol layer and the transport seam (it never imports client modules);
- the modules of ``gateway.ledger`` import each other without cycles, counting
  imports made only for type checking;
- nothing in ``gateway/`` but the CLI imports ``network`` (``network/`` depends on
  ``gateway.ledger``, not the reverse).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GATEWAY = ROOT / "gateway"

# What the embedded peer may use of the ledger package outside embedded/.
EMBEDDED_MAY_USE = (
    "gateway.ledger.protocol",
    "gateway.ledger.transport",
    "gateway.ledger.rpc_status",
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in GATEWAY.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_protocol_imports_nothing_else_of_the_ledger() -> None:
    for name, path in _modules().items():
        if not _within(name, "gateway.ledger.protocol"):
            continue
        for imported in _imports(path):
            if _within(imported, "gateway.ledger"):
                assert _within(imported, "gateway.ledger.protocol"), (name, imported)


def test_embedded_ledger_uses_only_protocol_and_transport() -> None:
    for name, path in _modules().items():
        if not _within(name, "gateway.ledger.embedded"):
            continue
        for imported in _imports(path):
            if _within(imported, "gateway.ledger") and not _within(
                imported, "gateway.ledger.embedded"
            ):
                assert any(_within(imported, p) for p in EMBEDDED_MAY_USE), (name, imported)


def test_no_import_cycles_in_the_ledger() -> None:
    modules = _modules()
    graph = {
        name: {i for i in _imports(path) if i in modules and _within(i, "gateway.ledger")} - {name}
        for name, path in modules.items()
        if _within(name, "gateway.ledger")
    }
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for dep in sorted(graph.get(node, ())):
            assert dep not in path, " -> ".join([*path[path.index(dep) :], dep])
            if dep not in done:
                visit(dep, [*path, dep])
        done.add(node)

    for start in sorted(graph):
        visit(start, [start])


def test_only_the_cli_imports_the_network_package() -> None:
    for name, path in _modules().items():
        if _within(name, "gateway.cli"):
            continue
        for imported in _imports(path):
            assert not _within(imported, "network"), (name, imported)
