"""Processes by pid: spawn detached, log, pid file with start time, stop, reuse guard."""

from __future__ import annotations

import os
from pathlib import Path

from network.processes import ProcessSpec, is_alive, read_pid, resident_kib, spawn, stop


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
