"""Stop every process recorded in a ``*.pid`` file under a folder.

The test runner calls this after pytest so that a test that crashed cannot
leave a peer, orderer or database running. Processes are stopped by the pid
their launcher recorded (SIGTERM, then SIGKILL after a grace period), never by
name. Usage: ``python scripts/reap.py FOLDER``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from network.processes import Running, is_alive, read_pid, stop


def _recorded_pid(pid_file: Path) -> int | None:
    try:
        fields = pid_file.read_text().split()
        first = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) > 1 and fields[1].isdigit():
        # Our launcher's format (pid, start time): only the very process it started.
        return read_pid(pid_file)
    # Other formats (PostgreSQL's postmaster.pid) carry the pid on the first line.
    return first if first > 1 and is_alive(first) else None


def reap(folder: Path) -> list[int]:
    running = [
        Running(str(pid_file), pid)
        for pid_file in folder.rglob("*.pid")
        if (pid := _recorded_pid(pid_file)) is not None
    ]
    left = stop(running)
    if left:
        print(f"reap: still alive after SIGKILL: {[r.pid for r in left]}", file=sys.stderr)
    return [r.pid for r in running]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: reap.py FOLDER")
    stopped = reap(Path(sys.argv[1]))
    if stopped:
        print(f"reap: stopped {len(stopped)} leftover process(es): {stopped}")
