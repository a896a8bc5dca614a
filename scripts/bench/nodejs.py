"""The benchmarks' Node packages: installed by npm from ``node/package-lock.json``.

``npm ci`` installs exactly what the committed lock file pins, into a folder
outside the clone (``~/.cache/anchorline/bench-node``, as ``scripts/setup``
does for the Fabric Node client), again only when the lock file changed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NODE_SRC = Path(__file__).with_name("node")
LOCK = NODE_SRC / "package-lock.json"
CACHE = Path.home() / ".cache" / "anchorline" / "bench-node"
LOAD_JS = NODE_SRC / "load.mjs"
RELAY_JS = NODE_SRC / "relay.mjs"


def node_modules() -> tuple[Path | None, str]:
    """``(node_modules, "")`` once installed, or ``(None, why not)``."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "needs Node.js and npm on PATH"
    modules = CACHE / "node_modules"
    same = all(
        (CACHE / name).is_file() and (CACHE / name).read_bytes() == (NODE_SRC / name).read_bytes()
        for name in ("package.json", "package-lock.json")
    )
    if same and (modules / "socket.io").is_dir() and (modules / "socket.io-client").is_dir():
        return modules, ""
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NODE_SRC / name, CACHE / name)
    try:
        out = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(CACHE)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return None, "npm ci timed out after 300 s"
    if out.returncode != 0:
        return None, f"npm ci failed: {out.stderr.strip()[-300:]}"
    return modules, ""
