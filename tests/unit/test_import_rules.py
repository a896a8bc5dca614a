"""The dependency rules of the package, held by reading its imports.

- The domain packages never import the web or Socket.IO layers (nor aiohttp,
  socketio, engineio): those are adapters over the domain, not the reverse.
- ``gateway.merkle`` is pure: of the project it imports only its own modules
  and the root error type.
- What member apps and auditors import (``gateway.client``), and the
  marketplace domain, load none of the server: checked in a fresh
  interpreter through ``sys.modules``, so an import hidden in a dependency
  counts too.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"

DOMAIN_PACKAGES = (
    "events",
    "auth",
    "anchoring",
    "merkle",
    "marketplace",
    "store",
    "identity",
    "ledger",
)
FORBIDDEN_IN_DOMAIN = ("aiohttp", "socketio", "engineio", "gateway.web", "gateway.stream")

SERVER_MODULES = (
    "aiohttp.web",
    "socketio.async_server",
    "engineio.async_server",
    "sqlalchemy",
    "gateway.stream.hub",
    "gateway.stream.sio",
    "gateway.web",
    "gateway.config",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports, relative ones resolved.

    Imports under ``if TYPE_CHECKING:`` count: a type-only arrow is still an arrow.
    """
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from gateway import web` imports gateway.web.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _files(package: str) -> list[Path]:
    return sorted((GATEWAY / package).rglob("*.py"))


def _imports_of(path: Path) -> set[str]:
    return imported_modules(
        path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py"
    )


def test_the_checker_sees_direct_relative_and_type_only_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import hashing\n"
        "from ..web import routes\n"
        "if TYPE_CHECKING:\n"
        "    import aiohttp.web\n"
        "from gateway import stream\n"
    )
    found = imported_modules(source, "gateway.merkle.tree")
    assert {"gateway.merkle.hashing", "gateway.web.routes", "aiohttp.web"} <= found
    assert "gateway.stream" in found
    assert _is_under("gateway.web.routes", FORBIDDEN_IN_DOMAIN)
    assert not _is_under("gateway.webhooks", FORBIDDEN_IN_DOMAIN)


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_domain_packages_do_not_import_the_web_or_socketio_layers(package: str) -> None:
    files = _files(package)
    assert files, f"gateway/{package} has no modules: update DOMAIN_PACKAGES"
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in _imports_of(path)
        if _is_under(name, FORBIDDEN_IN_DOMAIN)
    }
    assert not offending, sorted(offending)


def test_merkle_imports_nothing_of_the_project_but_its_own_errors() -> None:
    allowed = ("gateway.merkle", "gateway.errors")
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _files("merkle")
        for name in _imports_of(path)
        if _is_under(name, ("gateway", "network", "chaincode"))
        and not _is_under(name, allowed)
        # `from gateway import errors` records both "gateway" and "gateway.errors".
        and name != "gateway"
    }
    assert not offending, sorted(offending)


def _loaded_after_import(module: str) -> list[str]:
    probe = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize(
    "module",
    [
        "gateway.client",
        "gateway.client.marketplace",
        "gateway.client.settlement",
        "gateway.marketplace",
        "gateway.marketplace.service",
    ],
)
def test_client_and_marketplace_load_none_of_the_server(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert module in loaded  # the probe did import it, from this tree
    server = sorted(name for name in loaded if _is_under(name, SERVER_MODULES))
    assert not server, f"importing {module} loads {server}"


def test_importing_the_client_loads_no_socketio_until_it_connects() -> None:
    # python-socketio's package imports its server classes as well, so the
    # client's transport imports it when a connection is made.
    loaded = _loaded_after_import("gateway.client")
    assert not [name for name in loaded if _is_under(name, ("socketio", "engineio"))]
