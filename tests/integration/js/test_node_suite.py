"""The package's own tests under Node's test runner (``node --test``), so CI runs them."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.integration.js.support import JS_DIR, NODE, node_ready

pytestmark = pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))


def test_node_test_runner_passes() -> None:
    assert NODE is not None
    files = sorted(str(p.relative_to(JS_DIR)) for p in (JS_DIR / "test").glob("*.test.js"))
    assert files
    done = subprocess.run(
        [NODE, "--test", "--test-reporter=tap", *files],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = dict(re.findall(r"^# (pass|fail|cancelled) (\d+)$", done.stdout, re.M))
    assert done.returncode == 0 and summary.get("fail") == "0", done.stdout[-4000:] + done.stderr
    assert int(summary.get("pass", "0")) >= 60, summary


def test_type_declarations_describe_the_usage() -> None:
    """``tsc --noEmit`` over test/types/usage.ts against the hand-written .d.ts files."""
    tsc = JS_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.exists():
        pytest.skip("typescript is not installed in clients/js (npm ci)")
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(tsc), "-p", "tsconfig.json"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
