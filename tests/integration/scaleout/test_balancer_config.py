"""The balancer configuration the README ships is the one the tests run, and HAProxy takes it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scripts.bench.loopback import HAPROXY, REPO, haproxy_config


def test_the_documented_haproxy_config_is_the_tested_one() -> None:
    shipped = (REPO / "docs" / "scaleout" / "haproxy.cfg").read_text()
    expected = haproxy_config(8080, [("gateway1", 8081), ("gateway2", 8082)]).rstrip() + "\n"
    assert shipped == expected, "regenerate docs/scaleout/haproxy.cfg (scripts/bench/loopback.py)"


def test_haproxy_accepts_it() -> None:
    if not Path(HAPROXY).is_file():
        pytest.skip(f"{HAPROXY} not installed (scripts/setup installs haproxy)")
    done = subprocess.run(
        [HAPROXY, "-c", "-f", str(REPO / "docs" / "scaleout" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
