"""How the benchmarks describe the machine, show progress and write their results.

A benchmark returns a :class:`Section`: its tables (what the Markdown report
shows) and its raw figures (what the JSON keeps). :func:`write_results` puts
one run's sections, with the machine they ran on, in
``bench/results/<date>-<machine>.json`` and ``.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "bench" / "results"

LIBRARIES = (
    "aiohttp",
    "python-socketio",
    "python-engineio",
    "cryptography",
    "SQLAlchemy",
    "aiosqlite",
    "orjson",
    "uvloop",
    "grpcio",
    "rfc8785",
)


@dataclasses.dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Section:
    """One benchmark's outcome: tables for people, figures for programs.

    ``skipped`` is the reason it did not run (no Fabric, no Node), never empty
    when it did not.
    """

    name: str
    tables: list[Table] = dataclasses.field(default_factory=list)
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    skipped: str = ""
    seconds: float = 0.0


class Progress:
    """Timestamped progress lines on stderr (stdout stays for results)."""

    def __init__(self, quiet: bool = False) -> None:
        self.started = time.monotonic()
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(
                f"[{time.monotonic() - self.started:7.1f} s] {message}", file=sys.stderr, flush=True
            )


def _command_version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else platform.processor() or "unknown"


def memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def fabric_install() -> tuple[Any, str]:
    """``(install, "")`` for the Fabric install the network code would use, else ``(None, why)``."""
    sys.path.insert(0, str(REPO))
    from gateway.config import load_settings
    from network.install import FabricNotFound, find_fabric

    try:
        return find_fabric(load_settings().fabric_home, os.environ.get("PATH", os.defpath)), ""
    except FabricNotFound as exc:
        return None, str(exc)


def fabric_version() -> str:
    found, _ = fabric_install()
    if found is None:
        return "not found"
    return f"{found.fabric_version} (CA {found.ca_version}, {found.root})"


def fabric_script(
    name: str, script: Path, argv: list[str], smoke: bool, timeout_s: float
) -> Section:
    """Run a Fabric-only benchmark script as it is, its printout as the figures.

    Skipped, with the reason, when no Fabric install is found, and in smoke
    runs (bringing up a native network takes minutes).
    """
    found, why = fabric_install()
    if found is None:
        return Section(name, skipped=f"needs Fabric: {why}")
    if smoke:
        return Section(name, skipped="needs a native Fabric network (minutes); not in --smoke")
    out = subprocess.run(
        [sys.executable, str(script), *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO,
    )
    lines = out.stdout.splitlines()
    table = Table("printout", ["line"], [[line] for line in lines if line.strip()])
    return Section(name, [table], {"returncode": out.returncode, "stderr": out.stderr[-2000:]})


def node_packages(lock: Path) -> dict[str, str]:
    """Versions of the Node packages a benchmark's package-lock.json pins."""
    if not lock.is_file():
        return {}
    packages = json.loads(lock.read_text()).get("packages", {})
    return {
        name.removeprefix("node_modules/"): info["version"]
        for name, info in packages.items()
        if name.count("node_modules/") == 1 and "version" in info
    }


def describe_machine(node_lock: Path | None = None) -> dict[str, Any]:
    """Cores, CPU model, memory, load, and the versions of everything measured."""
    libraries = {}
    for name in LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "memory_mib": memory_mib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _command_version(["node", "--version"]),
        "fabric": fabric_version(),
        "libraries": libraries,
        "node_packages": node_packages(node_lock) if node_lock else {},
        "load_average": list(os.getloadavg()),
    }


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def markdown_table(table: Table) -> str:
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_markdown(run: dict[str, Any], sections: list[Section]) -> str:
    m = run["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v)
    nodes = ", ".join(f"{k} {v}" for k, v in m["node_packages"].items() if k.startswith("socket"))
    out = [
        f"# Benchmark run {run['started']}",
        "",
        f"`{run['command']}` — {run['mode']} run, {run['seconds']:.0f} s.",
        "",
        f"- machine: {m['hostname']}, {m['cores']} cores ({m['cpu_model']}), "
        f"{m['memory_mib']} MiB, Linux {m['kernel']}",
        "- load average (1/5/15 min) before: "
        + " / ".join(f"{x:.2f}" for x in run["load_before"])
        + ", after: "
        + " / ".join(f"{x:.2f}" for x in run["load_after"])
        + " (other work shared the machine when this is well above 0)",
        f"- Python {m['python']}, Node {m['node'] or 'not found'}, Fabric {m['fabric']}",
        f"- libraries: {libs}",
    ]
    if nodes:
        out.append(f"- Node packages: {nodes}")
    out += [
        "- percentiles: nearest rank (`scripts/bench/stats.py`), always an observed value",
        "",
    ]
    for section in sections:
        out.append(f"## {section.name}")
        out.append("")
        if section.skipped:
            out += [f"Skipped: {section.skipped}", ""]
            continue
        for table in section.tables:
            out += [f"### {table.title}", "", markdown_table(table), ""]
            out += [f"- {n}" for n in table.notes]
            if table.notes:
                out.append("")
        out += [f"({section.seconds:.0f} s)", ""]
    return "\n".join(out)


def write_results(
    sections: list[Section], run: dict[str, Any], directory: Path = RESULTS_DIR
) -> tuple[Path, Path]:
    """Write ``<date>-<machine>.json`` and ``.md`` under ``directory``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", run["machine"]["hostname"]) or "machine"
    stem = f"{run['started'][:10]}-{host}"
    if run["mode"] != "full":
        stem += f"-{run['mode']}"
    doc = {**run, "sections": [dataclasses.asdict(s) for s in sections]}
    json_path = directory / f"{stem}.json"
    md_path = directory / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md_path.write_text(render_markdown(run, sections))
    return json_path, md_path


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
