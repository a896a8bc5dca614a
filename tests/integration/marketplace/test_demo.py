"""``anchorline demo --no-serve`` on the embedded ledger: the README's first command, in CI form."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_demo_runs_the_whole_scenario_and_stops_what_it_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANCHORLINE_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "demo",
            "--ledger",
            "embedded",
            "--no-serve",
            "--auction-seconds",
            "3",
            "--bidders",
            "3",
            "--home",
            str(tmp_path / "demo"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "using the EMBEDDED ledger" in out
    assert "a bid after the close is refused: AL1511" in out
    assert "Propose@" in out and "Accept@" in out and "Settle@" in out
    assert "VERIFIED" in out
    pid = int(out.split("(pid ")[1].split(",")[0])
    # The gateway it started is gone (stopped by pid, not by name).
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
