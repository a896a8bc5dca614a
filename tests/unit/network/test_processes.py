"""Processes by pid: spawn detached, log, pid file with start time, stop, reuse guard."""

from __future__ import annotations

import os
import time
from pathlib import Path

from network.processes import (
    ProcessSpec,
    cpu_seconds,
    is_alive,
    read_pid,
    resident_kib,
    running_in,
    spawn,
    stop,
)


def _spec(tmp_path: Path, argv: tuple[str, ...]) -> ProcessSpec:
    return ProcessSpec(
        "sleeper", argv, {"PATH": os.defpath}, tmp_path / "s.log", tmp_path / "s.pid"
    )


def test_spawn_log_and_stop(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ("/bin/sh", "-c", "echo hello-from-child; exec sleep 30"))
    running = spawn(spec)
    try:
        assert read_pid(spec.pid_file) == running.pid
        assert is_alive(running.pid) and resident_kib(running.pid) > 0
        assert os.getsid(running.pid) == running.pid  # its own session
    finally:
        assert stop([running], timeout=5) == []
    assert not is_alive(running.pid)
    assert read_pid(spec.pid_file) is None
    assert "hello-from-child" in spec.log.read_text()


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ("/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"))
    running = spawn(spec)
    assert stop([running], timeout=0.5) == []
    assert not is_alive(running.pid)


def test_reused_pid_is_not_ours(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()}\n1\n")  # our own pid, but another start time
    assert read_pid(pid_file) is None
    pid_file.write_text("999999999\n")
    assert read_pid(pid_file) is None


def test_running_in_and_cpu_seconds(tmp_path: Path) -> None:
    # A child that counts for a while, then sleeps: its pid file is found, a stale
    # one is not, and its CPU time is reported in seconds (not clock ticks).
    spec = _spec(
        tmp_path,
        ("/bin/sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 30"),
    )
    (tmp_path / "gone.pid").write_text("999999999\n1\n")
    running = spawn(spec)
    try:
        assert running_in(tmp_path) == {"s": running.pid}
        used = 0.0
        for _ in range(200):  # at most 20 s: until the count is done
            time.sleep(0.1)
            if cpu_seconds(running.pid) == used and used > 0:
                break
            used = cpu_seconds(running.pid)
        assert 0.05 <= used < 20
    finally:
        stop([running], timeout=5)
    assert cpu_seconds(running.pid) == 0.0
    assert running_in(tmp_path / "absent") == {}
