"""Every error code is unique, in its package's range, and documented in docs/errors.md."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import gateway
import network
from gateway.errors import AnchorlineError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def _all_error_types() -> list[type[AnchorlineError]]:
    for package in (gateway, network):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations." in info.name or info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
    found: list[type[AnchorlineError]] = []
    pending: list[type[AnchorlineError]] = [AnchorlineError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_codes_are_unique_and_documented() -> None:
    documented = set(re.findall(r"`(AL\d{4})`", DOCS.read_text()))
    owners: dict[str, list[str]] = {}
    for cls in _all_error_types():
        # A subclass that does not set its own code shares its parent's on purpose.
        if "code" in vars(cls):
            owners.setdefault(cls.code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    assert len(owners) > 50
    shared = {code: names for code, names in owners.items() if len(names) > 1}
    assert not shared, f"codes used by more than one error type: {shared}"
    undocumented = sorted(set(owners) - documented)
    assert not undocumented, f"add these codes to docs/errors.md: {undocumented}"
    for code in owners:
        assert re.fullmatch(r"AL1\d{3}", code), code
