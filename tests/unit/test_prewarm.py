"""Pre-importing task libraries: only in the processes that fork task processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from churnops.prewarm import TASK_LIBRARIES, import_task_libraries
from tests.helpers import ROOT

PROBE = """
import json, sys
sys.argv = json.loads(sys.argv[1])
sys.path.insert(0, {plugins!r})
import airflow_local_settings  # as Airflow does at the start of each process
print(json.dumps(sorted(m for m in ("pandas", "sklearn", "mlflow", "evidently") if m in sys.modules)))
"""


def _loaded_after_local_settings(argv: list[str], **env: str) -> list[str]:
    probe = PROBE.format(plugins=str(ROOT / "plugins"))
    out = subprocess.run([sys.executable, "-c", probe, json.dumps(argv)], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["airflow", "scheduler"], ["airflow", "scheduler", "--skip-serve-logs"],
                                  ["airflow", "celery", "worker", "--queues", "q"]])
def test_processes_that_fork_tasks_start_with_the_task_libraries_loaded(argv):
    assert _loaded_after_local_settings(argv) == ["evidently", "mlflow", "pandas", "sklearn"]


@pytest.mark.parametrize("argv", [["airflow", "api-server"], ["airflow", "dag-processor"],
                                  ["airflow", "dags", "list"], ["airflow", "celery", "flower"]])
def test_other_airflow_processes_stay_light(argv):
    assert _loaded_after_local_settings(argv) == []


def test_it_can_be_turned_off():
    assert _loaded_after_local_settings(["airflow", "scheduler"], CHURNOPS_PREIMPORT="false") == []


def test_a_missing_library_is_reported_not_fatal():
    assert import_task_libraries(("json", "no_such_module_for_churnops")) == ["no_such_module_for_churnops"]
    assert "evidently" in TASK_LIBRARIES and all(isinstance(m, str) for m in TASK_LIBRARIES)
