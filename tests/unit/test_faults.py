"""churnops.faults: a crash point kills the first process that reaches it, and only when listed."""

from __future__ import annotations

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh CHURNOPS_HOME, where the crash markers are kept (the child processes inherit it)."""
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path))
    return tmp_path


def test_a_crash_point_sigkills_the_first_process_only(home):
    import os
    import signal
    import subprocess
    import sys

    probe = "from churnops.faults import crash_point; crash_point('unit:point'); print('passed')"
    env = {**os.environ, "CHURNOPS_CRASH_AT": "other:point,unit:point"}
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert first.returncode == -signal.SIGKILL and "passed" not in first.stdout
    assert (home / "crashes" / "unit:point").read_text().strip().isdigit()
    again = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip() == "passed", "the retry runs past the point"
    unset = subprocess.run(
        [sys.executable, "-c", probe.replace("unit:point", "never:listed")], env=env, capture_output=True, text=True
    )
    assert unset.returncode == 0
