"""The benchmarks import each other as top-level modules from scripts/bench/."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "scripts" / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
