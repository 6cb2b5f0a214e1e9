"""Real Airflow processes for the integration tests and benchmarks: api-server, scheduler and dag-processor.

:func:`running_stack` (the integration tests' ``airflow_stack`` fixture) gives a fresh
``AIRFLOW_HOME`` with a LocalExecutor, a fresh metadata DB (a throwaway PostgreSQL database when a
server answers on 127.0.0.1:5432 and a driver is installed, else SQLite), a fresh ``CHURNOPS_HOME``
and a churnops config, all passed to the processes through their environment. The processes run
in their own sessions and are always stopped, with every task process they started, when the
module ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers import ROOT, write_config

BIN = Path(sys.executable).parent
AIRFLOW = BIN / "airflow"
CHURNOPS = BIN / "churnops"
MLFLOW = BIN / "mlflow"
DAG_IDS = ("churn_training", "churn_monitoring", "churn_retraining")
TERMINAL = {"success", "failed"}
PROJECT_CODE = (str(ROOT / "include"), str(ROOT / "dags"))  # frames worth showing in a task's traceback
# Settings the developer's shell must not leak into the processes under test.
LEAKY_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CHURNOPS_")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40, width: int = 400) -> str:
    if not path.is_file():
        return f"(no {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(_readable(line, width) for line in text)


def _readable(line: str, width: int) -> str:
    """Task logs are JSON lines: show time, level, message and the exception with its project frames."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return line if len(line) <= width else line[:width] + " …"
    text = f"{record.get('timestamp', '')} {record.get('level', '')} {record.get('event', '')}".strip()[:width]
    for error in record.get("error_detail") or []:
        ours = [
            f"{Path(f['filename']).name}:{f['lineno']} {f['name']}"
            for f in error.get("frames") or []
            if f.get("filename", "").startswith(PROJECT_CODE)
        ]
        value = " ".join(str(error.get("exc_value")).split())[:width]
        text += f"\n    {error.get('exc_type')}: {value}" + (f"\n    via {' → '.join(ours)}" if ours else "")
    return text


class _PostgresDatabase:
    """A fresh database on a local trust-auth PostgreSQL, dropped at teardown."""

    def __init__(self, purpose: str = "airflow", port: int = 5432) -> None:
        import psycopg2

        self._connect = lambda: psycopg2.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=3
        )
        self.name = f"churnops_it_{purpose}_{uuid.uuid4().hex[:10]}"
        self._execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{self.name}"

    def _execute(self, statement: str) -> None:
        connection = self._connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def drop(self) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def redis_or_reason() -> str:
    """ "" when a Redis server answers on 127.0.0.1:6379 and its client is installed, else why not."""
    if importlib.util.find_spec("redis") is None or importlib.util.find_spec("airflow.providers.celery") is None:
        return "the redis client or the Celery provider is not installed"
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"no Redis on 127.0.0.1:6379 ({type(exc).__name__})"
    return ""


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temp folder, a free port, trust auth).

    For faults that must not touch the machine's shared server: the test restarts this one.
    Built from the machine's PostgreSQL binaries, run as the ``postgres`` user when the tests
    run as root (``initdb`` refuses root).
    """

    def __init__(self) -> None:
        import glob
        import pwd
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(found[-1]).parent
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")  # KeyError: no such user
            self.as_user = ["runuser", "-u", "postgres", "--"]
        # Its own folder in /tmp: pytest's are private to root, where the postgres user cannot reach.
        self.root = Path(tempfile.mkdtemp(prefix="churnops-postgres-"))
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()

    def _pg(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bin / program), *args], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)}: {done.stdout[-1000:]}{done.stderr[-1000:]}")

    def _ctl(self, action: str) -> None:
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-m",
            "fast",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            action,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop")

    def remove(self) -> None:
        """Stop the server (if running) and delete its files."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        return _tail(self.root / "server.log", lines)


def _postgres_or_none(purpose: str = "airflow", port: int = 5432) -> tuple[_PostgresDatabase | None, str]:
    """A fresh PostgreSQL database if one can be made here, else None and why not."""
    missing = [driver for driver in ("psycopg2", "asyncpg") if importlib.util.find_spec(driver) is None]
    if missing:  # Airflow needs both: a sync engine and an async one
        return None, f"PostgreSQL drivers not installed: {', '.join(missing)}"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    except OSError:
        return None, f"nothing listening on 127.0.0.1:{port}"
    try:
        return _PostgresDatabase(purpose, port), ""
    except Exception as exc:  # auth, permissions: SQLite still tests the same behaviour
        return None, f"cannot create a database: {exc}"


def stop_group(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a process started in a session of its own, with its whole group; SIGKILL after ``timeout`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class AirflowStack:
    """The running processes, their environment, and REST helpers with useful failure messages."""

    def __init__(
        self,
        root: Path,
        executor: str = "LocalExecutor",
        monitoring: dict | None = None,
        extra_env: dict[str, str] | None = None,
        postgres_port: int = 5432,
    ) -> None:
        import httpx

        self.root = root
        self.home = root / "airflow"
        self.churnops_home = root / "churnops"
        self.process_logs = root / "process-logs"
        for folder in (self.home, self.churnops_home, self.process_logs):
            folder.mkdir(parents=True)
        self.config = write_config(
            root / "config.yaml",
            training={"families": ["logistic_regression"], "cv_folds": 2},
            policy={"bootstrap_samples": 200},  # the default model name: churn-predictor
            # 1,500-row days in 3 shards: every monitored day runs mapped score_shard tasks.
            monitoring={"chunk_rows": 500, "shard_rows": 500, **(monitoring or {})},
        )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.postgres, self.why_not_postgres = _postgres_or_none("airflow", postgres_port)
        self.database = "postgresql" if self.postgres else "sqlite"
        db_url = self.postgres.url if self.postgres else f"sqlite:///{self.home / 'airflow.db'}"
        # A real MLflow tracking server (PostgreSQL store when available, artifacts served by it).
        self.mlflow_postgres = _postgres_or_none("mlflow", postgres_port)[0] if self.postgres else None
        self.mlflow_store = (
            self.mlflow_postgres.url if self.mlflow_postgres else f"sqlite:///{self.churnops_home / 'mlflow-server.db'}"
        )
        self.mlflow_port = free_port()
        self.mlflow_uri = f"http://127.0.0.1:{self.mlflow_port}"
        self.executor = executor
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
        self.env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{self.env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__EXECUTOR": executor,
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(96),  # HMAC-SHA512 wants 64+ bytes
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "CHURNOPS_HOME": str(self.churnops_home),
                "CHURNOPS_CONFIG": str(self.config),
                "MLFLOW_TRACKING_URI": self.mlflow_uri,
                "CHURNOPS_MLFLOW_UI_URL": self.mlflow_uri,
            }
        )
        self.env.update(extra_env or {})
        if not self.postgres:  # SQLite's one writer: make concurrent writers queue (see churnops.orchestration.sqlite)
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "churnops.orchestration.sqlite.CONNECT_ARGS"
        if executor == "CeleryExecutor":
            # A queue of its own on the shared Redis: no other test run's worker takes these tasks.
            self.queue = f"churnops_it_{uuid.uuid4().hex[:8]}"
            result_db = (
                self.postgres.url.replace("postgresql+psycopg2", "db+postgresql+psycopg2")
                if self.postgres
                else f"db+sqlite:///{self.home / 'celery-results.db'}"
            )
            self.env.update(
                {
                    "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
                    "AIRFLOW__CELERY__RESULT_BACKEND": result_db,
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
                }
            )
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[tuple[str, ...], Path, dict | None]] = {}
        self.restarts: list[str] = []
        self._log_files: list[Any] = []
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    # -- processes ------------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A command (``airflow …`` or ``churnops …``) with the stack's environment; fails the test on error."""
        program = {"airflow": AIRFLOW, "churnops": CHURNOPS, "mlflow": MLFLOW}[args[0]]
        try:
            done = subprocess.run(
                [str(program), *args[1:]],
                env=self.env,
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`{' '.join(args)}` did not finish in {timeout:.0f} s\n{exc.stderr or ''}"[-4000:])
        if done.returncode != 0:
            pytest.fail(
                f"`{' '.join(args)}` exited with {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            )
        return done

    def start(self, name: str, *args: str, program: Path = AIRFLOW, env: dict | None = None) -> None:
        log = (self.process_logs / f"{name}.log").open("ab")  # a restarted process appends
        self._log_files.append(log)
        # A new session: the process and its workers form one group, killed together at teardown.
        self.processes[name] = subprocess.Popen(
            [str(program), *args],
            env=env or self.env,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.commands[name] = (args, program, env)

    def restart_exited(self) -> list[str]:
        """Start again every process that exited, as compose's ``restart: always`` does; their names."""
        exited = [name for name, process in self.processes.items() if process.poll() is not None]
        for name in exited:
            args, program, env = self.commands[name]
            self.restarts.append(f"{name} (exit {self.processes[name].returncode})")
            self.start(name, *args, program=program, env=env)
        return exited

    def start_mlflow(self) -> None:
        """The MLflow tracking server (started again on the same port and store after an outage)."""
        env = {**self.env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.start(
            "mlflow",
            "server",
            "--backend-store-uri",
            self.mlflow_store,
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.root / "mlflow-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.mlflow_port),
            "--workers",
            "1",
            program=MLFLOW,
            env=env,
        )

    def start_celery_worker(self, name: str, concurrency: int) -> None:
        """A Celery worker on the stack's queue, with its own hostname and log file ``<name>.log``."""
        self.start(
            name,
            "celery",
            "worker",
            "--queues",
            self.queue,
            "--concurrency",
            str(concurrency),
            "--celery-hostname",
            f"{name}-{self.queue}@%h",
            "--skip-serve-logs",
        )

    def stop_process(self, name: str) -> None:
        """SIGTERM one process group (SIGKILL if it lingers) and forget it, so check_alive does not miss it."""
        stop_group(self.processes.pop(name), timeout=60)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(
                    f"airflow {name} exited with {process.returncode}:\n{_tail(self.process_logs / f'{name}.log', 60)}"
                )

    def stop(self) -> None:
        """SIGTERM each process group, then SIGKILL what is left, task processes included."""
        import psutil

        started = [p for p in self.processes.values() if p.poll() is None]
        descendants: list[psutil.Process] = []
        for process in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                descendants += psutil.Process(process.pid).children(recursive=True)
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        _, alive = psutil.wait_procs(descendants, timeout=5)
        for leftover in alive:  # task processes run in groups of their own
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        for log in self._log_files:
            log.close()
        self.http.close()

    # -- REST -----------------------------------------------------------------------------------

    def login(self) -> None:
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        response = self.http.post("/auth/token", json={"username": "admin", "password": password})
        assert response.status_code == 201, f"POST /auth/token: {response.status_code} {response.text}"
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def api(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        response = self.http.request(method, f"/api/v2{path}", **kwargs)
        assert response.status_code in ok, f"{method} /api/v2{path}: {response.status_code} {response.text[:2000]}"
        return response.json() if response.content else None

    def dag_run(self, dag_id: str, run_id: str) -> dict | None:
        response = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, f"GET dag run {dag_id}/{run_id}: {response.status_code} {response.text}"
        return response.json()

    def trigger(self, dag_id: str, run_id: str, *, logical_date: str | None = None, conf: dict | None = None) -> dict:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", ok=(200, 201), json=body)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        found = self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", params={"limit": 100})
        return found["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id`` (``task_id[i]`` for mapped instances) → state."""
        return {
            ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float,
        expect: str = "success",
        queued_after: str | None = None,
        allow_retries: bool = False,
        supervised: bool = False,
    ) -> dict[str, Any]:
        """Poll until the run ends; fail with the scheduler's and failing tasks' logs unless it ends ``expect``.

        A task failing once is already a failure here (its retries would only add minutes),
        unless ``allow_retries`` (the fault tests, whose tasks are meant to fail and retry).
        ``queued_after``: a rerun's previous ``queued_at``; its earlier end does not count.
        ``supervised``: a process that exits is started again (:meth:`restart_exited`), not a failure;
        so is an API call failing meanwhile.
        """
        import httpx

        deadline, run = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if supervised:
                self.restart_exited()
                try:
                    run = self.dag_run(dag_id, run_id)
                except (httpx.HTTPError, AssertionError):  # the api-server is restarting or its DB is away
                    time.sleep(1)
                    continue
            else:
                self.check_alive()
                run = self.dag_run(dag_id, run_id)
            if run is not None and queued_after is not None and run["queued_at"] == queued_after:
                time.sleep(1)
                continue
            if run is not None and run["state"] in TERMINAL:
                if run["state"] != expect:
                    pytest.fail(
                        f"{dag_id} run {run_id} ended {run['state']}, expected {expect}\n"
                        + self.diagnostics(dag_id, run_id)
                    )
                return run
            if run is not None and run["state"] == "running" and expect == "success" and not allow_retries:
                failing = sorted(
                    ti["task_id"]
                    for ti in self.task_instances(dag_id, run_id)
                    if ti["state"] in ("up_for_retry", "failed")
                )
                if failing:
                    pytest.fail(
                        f"{dag_id} run {run_id}: {', '.join(failing)} failed\n" + self.diagnostics(dag_id, run_id)
                    )
            time.sleep(1)
        what = "was never created" if run is None else f"is still {run['state']}"
        pytest.fail(f"{dag_id} run {run_id} {what} after {timeout:.0f} s\n" + self.diagnostics(dag_id, run_id))

    def diagnostics(self, dag_id: str, run_id: str) -> str:
        parts = [
            f"metadata DB: {self.database}"
            + (f" (not PostgreSQL: {self.why_not_postgres})" if self.why_not_postgres else "")
            + f"; files under {self.root}"
        ]
        try:
            instances = self.task_instances(dag_id, run_id) if self.dag_run(dag_id, run_id) else []
        except AssertionError as exc:
            instances = []
            parts.append(f"(task instances unavailable: {exc})")
        if instances:
            parts.append(
                "task states: "
                + json.dumps(
                    {
                        f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]: t["state"]
                        for t in instances
                    },
                    sort_keys=True,
                )
            )
        for ti in instances:
            if ti["state"] in ("failed", "up_for_retry", "running"):
                parts.append(
                    f"--- log of {ti['task_id']} (map index {ti['map_index']}, {ti['state']}, "
                    f"try {ti['try_number']}):\n{self.task_log(dag_id, run_id, ti)}"
                )
        for name in ("scheduler", "dag-processor", "api-server", "celery-worker"):
            lines = 40 if name == "scheduler" else 10
            parts.append(f"--- tail of the {name} log:\n{_tail(self.process_logs / f'{name}.log', lines)}")
        return "\n".join(parts)

    def task_log(self, dag_id: str, run_id: str, ti: dict) -> str:
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={ti['task_id']}"
        if ti["map_index"] >= 0:
            folder = folder / f"map_index={ti['map_index']}"
        attempts = sorted(folder.glob("attempt=*.log"), key=lambda p: int(p.stem.split("=")[1]))
        return _tail(attempts[-1], 40) if attempts else f"(no log file under {folder})"

    # -- start-up -------------------------------------------------------------------------------

    def wait_until_ready(self, timeout: float) -> None:
        """api-server answering, scheduler and dag-processor healthy, the three DAGs parsed."""
        deadline = time.monotonic() + timeout
        health: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(Exception):
                health = self.http.get("/api/v2/monitor/health").json()
                if all(
                    (health.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "dag_processor")
                ):
                    break
            time.sleep(1)
        else:
            pytest.fail(
                f"Airflow not healthy after {timeout:.0f} s: {health}\n"
                + "\n".join(f"--- {n}:\n{_tail(self.process_logs / f'{n}.log', 30)}" for n in self.processes)
            )
        self.login()
        found: set[str] = set()
        while time.monotonic() < deadline:
            errors = self.api("GET", "/importErrors")
            if errors["total_entries"]:
                pytest.fail("DAG import errors:\n" + "\n".join(e["stack_trace"] for e in errors["import_errors"]))
            found = {d["dag_id"] for d in self.api("GET", "/dags", params={"dag_id_pattern": "churn_"})["dags"]}
            if found >= set(DAG_IDS):
                return
            time.sleep(1)
        pytest.fail(
            f"DAGs not parsed after {timeout:.0f} s: found {sorted(found)}\n"
            f"{_tail(self.process_logs / 'dag-processor.log', 40)}"
        )

    def wait_for_http(self, name: str, url: str, timeout: float) -> None:
        """Until ``url`` answers 200; fail with the tail of process ``name``'s log if it never does."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        pytest.fail(f"{name} not ready after {timeout:.0f} s\n{_tail(self.process_logs / f'{name}.log', 40)}")

    def wait_until_backfills_complete(self, dag_id: str, timeout: float = 60) -> None:
        """The scheduler marks a backfill completed a moment after its last run ends (one at a time per DAG)."""
        deadline, backfills = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            backfills = self.api("GET", "/backfills", params={"dag_id": dag_id})["backfills"]
            if all(b["completed_at"] for b in backfills):
                return
            time.sleep(1)
        pytest.fail(f"backfill of {dag_id} not marked completed after {timeout:.0f} s: {backfills}")

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            assert self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})["is_paused"] is False


@contextlib.contextmanager
def running_stack(
    root: Path,
    executor: str = "LocalExecutor",
    *,
    celery_workers: int = 1,
    worker_concurrency: int = 4,
    monitoring: dict | None = None,
    extra_env: dict[str, str] | None = None,
    postgres_port: int = 5432,
) -> Iterator[AirflowStack]:
    """api-server, scheduler, dag-processor (+ Celery workers), an MLflow server; always stopped."""
    missing = [str(p) for p in (AIRFLOW, CHURNOPS, MLFLOW) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"needs the Airflow, MLflow and churnops executables next to {sys.executable}; missing: {missing}")
    if importlib.util.find_spec("httpx") is None or importlib.util.find_spec("psutil") is None:
        pytest.skip("needs httpx and psutil (Airflow dependencies) in the test interpreter")
    stack = AirflowStack(root, executor, monitoring, extra_env, postgres_port)
    try:
        stack.start_mlflow()
        stack.run("airflow", "db", "migrate", timeout=180)
        stack.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(stack.port), "--workers", "1")
        stack.start("scheduler", "scheduler", "--skip-serve-logs")
        stack.start("dag-processor", "dag-processor")
        if executor == "CeleryExecutor":
            for k in range(celery_workers):
                stack.start_celery_worker("celery-worker" if k == 0 else f"celery-worker-{k}", worker_concurrency)
        stack.run("churnops", "airflow-settings", "load", str(ROOT / "airflow_settings.yaml"))
        stack.wait_for_http("mlflow", f"{stack.mlflow_uri}/health", timeout=120)
        stack.wait_until_ready(timeout=120)
        yield stack
    finally:
        stack.stop()
        for database in (stack.postgres, stack.mlflow_postgres):
            if database:
                database.drop()
