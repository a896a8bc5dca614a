"""The reference scenario is a member app: it adds nothing of the server to the client library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import json, sys
import gateway.client, gateway.client.marketplace, gateway.client.settlement
before = set(sys.modules)
import gateway.cli.scenario
print(json.dumps(sorted(set(sys.modules) - before)))
"""

# What the scenario may add to what the client library loads: the auditor's offline
# verifier (proofs, Merkle, certificates) and itself.
ALLOWED = ("gateway.cli", "gateway.anchoring.proof", "gateway.anchoring.leaf", "gateway.merkle")


def test_the_scenario_loads_only_the_client_library_and_the_offline_verifier() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    added = [m for m in json.loads(done.stdout) if m.split(".")[0] in ("gateway", "socketio")]
    assert "gateway.cli.scenario" in added
    extra = [
        m
        for m in added
        if m != "gateway.anchoring"
        and not m.startswith(ALLOWED)
        and not m.startswith("gateway.identity")
    ]
    assert extra == [], extra
