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
