"""Starting, checking and stopping the network's processes by pid.

Processes are spawned in their own session (so Ctrl-C on the CLI or the end
of a test does not hit them), with stdout and stderr appended to one log file
and a pid file beside the others. The pid file holds the pid and the
process's start time from ``/proc/<pid>/stat``, so a pid reused by the
system after a crash is never mistaken for one of ours (and never signalled).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from network.errors import NodeFailed


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    log: Path
    pid_file: Path


@dataclasses.dataclass(frozen=True)
class Running:
    name: str
    pid: int


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat, or None if the pid is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing paren.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def _reap(pid: int) -> None:
    # Our own children stay zombies until waited for; others are not ours to reap.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def spawn(spec: ProcessSpec) -> Running:
    """Start the process detached, logging to ``spec.log``; write its pid file."""
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    spec.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with spec.log.open("ab") as log:
        log.write(
            f"--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(spec.argv)}\n".encode()
        )
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    # posix_spawn, not subprocess.Popen: these processes outlive the caller, and a
    # Popen object left behind would warn (and fail tests) when collected.
    try:
        pid = os.posix_spawn(
            spec.argv[0],
            list(spec.argv),
            dict(spec.env),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(spec.log), flags, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )
    except OSError as exc:
        raise NodeFailed(f"could not start {spec.name} ({spec.argv[0]}): {exc}") from None
    started = _start_time(pid) or ""
    spec.pid_file.write_text(f"{pid}\n{started}\n")
    return Running(spec.name, pid)


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is the one we started."""
    try:
        lines = pid_file.read_text().split()
    except OSError:
        return None
    if not lines:
        return None
    pid = int(lines[0])
    _reap(pid)
    current = _start_time(pid)
    if current is None:
        return None
    if len(lines) > 1 and lines[1] != current:
        return None
    return pid


def running_in(run_dir: Path) -> dict[str, int]:
    """Every process recorded by a pid file in ``run_dir`` that is still alive, by name."""
    alive = {}
    for pid_file in sorted(run_dir.glob("*.pid")) if run_dir.is_dir() else []:
        pid = read_pid(pid_file)
        if pid is not None:
            alive[pid_file.stem] = pid
    return alive


def is_alive(pid: int) -> bool:
    _reap(pid)
    return _start_time(pid) is not None


def stop(running: Iterable[Running], timeout: float = 8.0) -> list[Running]:
    """SIGTERM each, then SIGKILL what is left after ``timeout``; return any still alive."""
    targets = [r for r in running if is_alive(r.pid)]
    for r in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(r.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = [r for r in targets if is_alive(r.pid)]
        if not targets:
            return []
        time.sleep(0.05)
    for r in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(r.pid, signal.SIGKILL)
    # After SIGKILL the pid can answer for a moment before it is reaped: poll.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        targets = [r for r in targets if is_alive(r.pid)]
        if not targets:
            return []
        time.sleep(0.05)
    return targets


def proportional_kib(pid: int) -> int:
    """Pss of the process in KiB: its resident pages, shared ones divided among sharers.

    Summed over processes this counts the pages of a binary run three times once,
    where a sum of VmRSS counts them three times.
    """
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used, in seconds (0 if gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    # utime and stime: fields 14 and 15 of stat(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_kib(pid: int) -> int:
    """VmRSS of the process in KiB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0
