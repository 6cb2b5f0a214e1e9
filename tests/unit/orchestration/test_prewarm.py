"""churnops.orchestration.prewarm: task libraries pre-imported only in the processes that fork task processes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from churnops.orchestration.prewarm import TASK_LIBRARIES, import_task_libraries
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
    out = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(argv)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _local_settings_module():
    spec = importlib.util.spec_from_file_location(
        "churnops_local_settings_under_test", ROOT / "plugins" / "airflow_local_settings.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # pytest's argv: not a process that forks tasks, so nothing is imported
    return module


@pytest.mark.parametrize(
    ("argv", "forks"),
    [
        (["airflow", "scheduler"], True),
        (["airflow", "scheduler", "--skip-serve-logs"], True),
        (["airflow", "celery", "worker", "--queues", "q"], True),
        (["airflow", "api-server"], False),
        (["airflow", "dag-processor"], False),
        (["airflow", "dags", "list"], False),
        (["airflow", "celery", "flower"], False),
        (["airflow"], False),
    ],
)
def test_only_the_scheduler_and_the_celery_worker_pre_import(argv, forks):
    assert _local_settings_module()._forks_task_processes(argv) is forks


def test_a_scheduler_process_starts_with_the_task_libraries_loaded():
    assert _loaded_after_local_settings(["airflow", "scheduler"]) == ["evidently", "mlflow", "pandas", "sklearn"]


def test_other_processes_stay_light_and_it_can_be_turned_off():
    assert _loaded_after_local_settings(["airflow", "api-server"]) == []
    assert _loaded_after_local_settings(["airflow", "scheduler"], CHURNOPS_PREIMPORT="false") == []


def test_a_missing_library_is_reported_not_fatal():
    assert import_task_libraries(("json", "no_such_module_for_churnops")) == ["no_such_module_for_churnops"]
    assert "evidently" in TASK_LIBRARIES and all(isinstance(m, str) for m in TASK_LIBRARIES)
