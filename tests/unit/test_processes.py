"""Owners of temporaries and runs: alive while their process runs, gone once it ends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from churnops.processes import owner_is_gone, process_owner


def test_a_live_owner_stays_alive_across_a_step_of_the_wall_clock(monkeypatch):
    psutil_linux = pytest.importorskip("psutil._pslinux", reason="the wall clock's boot time is read this way on Linux")
    owner = process_owner()
    assert not owner_is_gone(owner)
    real_boot_time = psutil_linux.boot_time
    # NTP stepping the clock by 5 s moves the boot time the wall clock gives (what psutil adds).
    monkeypatch.setattr(psutil_linux, "boot_time", lambda: real_boot_time() + 5.0)
    assert not owner_is_gone(owner), "a clock step made this very process look like another one"


def test_an_ended_process_is_gone_and_a_reused_pid_is_another_owner():
    child = subprocess.run(
        [sys.executable, "-c", "from churnops.processes import process_owner; print(process_owner())"],
        capture_output=True,
        text=True,
        check=True,
    )
    ended = child.stdout.strip()
    assert owner_is_gone(ended)
    host, pid, started = process_owner().rsplit("_", 2)
    assert owner_is_gone(f"{host}_{pid}_{int(started) + 1}"), "same pid, another start: not this process"
    assert not owner_is_gone(f"another-host_{pid}_{started}"), "another host's processes are left alone"
