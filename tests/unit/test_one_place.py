"""Rules that drifted when they were written in several places now live in one.

Each test scans the source (as text, through ``ast``) for the calls that
make the rule, and allows them only in the one module that owns it.
chaincode/ is not scanned: it runs in its own process without the gateway
and keeps its own signature check.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path, matches: Callable[[ast.AST], bool]) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return sorted(getattr(node, "lineno", 0) for node in ast.walk(tree) if matches(node))


def _elsewhere(
    packages: Iterable[str], owner: str, allowed: set[str], matches: Callable[[ast.AST], bool]
) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for package in packages:
        for path in sorted((_ROOT / package).rglob("*.py")):
            rel = path.relative_to(_ROOT).as_posix()
            if rel != owner and rel not in allowed and (lines := _lines(path, matches)):
                found[rel] = lines
    return found


_ECDSA_NAMES = {"ECDSA", "Prehashed", "decode_dss_signature", "encode_dss_signature"}


def _is_ecdsa_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in _ECDSA_NAMES


def _reads_wall_clock(node: ast.AST) -> bool:
    # time.time / time.time_ns; durations (time.monotonic, perf_counter) are not the clock.
    return (
        isinstance(node, ast.Attribute)
        and node.attr in {"time", "time_ns"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "time"
    )


def test_ecdsa_is_signed_and_verified_in_gateway_identity_signing_only() -> None:
    owner = "gateway/identity/signing.py"
    assert _elsewhere(["gateway", "network"], owner, set(), _is_ecdsa_call) == {}
    assert _lines(_ROOT / owner, _is_ecdsa_call)  # the scan sees the calls where they are


def test_the_gateway_reads_the_wall_clock_in_gateway_clock_only() -> None:
    owner = "gateway/clock.py"
    # Fabric header timestamps are protobuf Timestamps in nanoseconds, not a Clock reading.
    allowed = {"gateway/ledger/protocol/proposal.py"}
    assert _elsewhere(["gateway"], owner, allowed, _reads_wall_clock) == {}
    assert _lines(_ROOT / owner, _reads_wall_clock)
