"""The benchmarks import nothing from ``tests/`` (issue 13): what they need of a gateway they
take from the package or from each other (``gateway_inprocess.bench_settings``), so a test
helper can change without changing what a benchmark measures."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_import_rules import imported_modules

BENCH = Path(__file__).resolve().parents[3] / "scripts" / "bench"
MODULES = sorted(BENCH.rglob("*.py"))


def imports_of_tests(source: str, module: str) -> set[str]:
    """The modules under ``tests`` that ``source`` imports, statically or by
    ``importlib.import_module("tests…")`` with a literal name."""
    names = imported_modules(source, module)
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return {n for n in names if n == "tests" or n.startswith("tests.")}


def test_the_check_sees_each_way_of_importing_tests() -> None:
    source = (
        "import importlib\n"
        "import testsuite\n"
        "from tests.load.rawsocket import RawSocketIO\n"
        "import tests.cluster as cluster\n"
        "def late():\n"
        "    from tests import support\n"
        "    return importlib.import_module('tests.unit.store.test_store')\n"
    )
    assert imports_of_tests(source, "overload") == {
        "tests.load.rawsocket",
        "tests.load.rawsocket.RawSocketIO",
        "tests.cluster",
        "tests",
        "tests.support",
        "tests.unit.store.test_store",
    }


def test_there_are_benchmarks_to_check() -> None:
    assert len(MODULES) > 10 and (BENCH / "runner.py") in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(BENCH)))
def test_benchmark_imports_nothing_from_tests(path: Path) -> None:
    found = imports_of_tests(path.read_text(encoding="utf-8"), path.stem)
    assert not found, f"scripts/bench/{path.relative_to(BENCH)} imports {sorted(found)}"
