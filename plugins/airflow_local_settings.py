"""Airflow local settings for churnops (Airflow imports ``airflow_local_settings`` from the
plugins folder, which it puts on ``sys.path``, at the start of every Airflow process).

In the processes that fork task processes (the scheduler, whose LocalExecutor workers are forked
from it, and a Celery worker) it pre-imports the libraries churnops' tasks use, so each task
starts with them loaded instead of spending seconds importing them (see ``churnops.orchestration.prewarm``).
Every other process (api-server, DAG processor, CLI) is left alone. Set
``CHURNOPS_PREIMPORT=false`` to turn it off.
"""

from __future__ import annotations

import os
import sys


def _forks_task_processes(argv: list[str]) -> bool:
    command = [a for a in argv[1:3] if not a.startswith("-")]
    return command[:1] == ["scheduler"] or command == ["celery", "worker"]


if os.environ.get("CHURNOPS_PREIMPORT", "true").lower() != "false" and _forks_task_processes(sys.argv):
    from churnops.orchestration.prewarm import import_task_libraries

    import_task_libraries()
