"""The whole churnops loop on this machine, on the embedded default (SQLite, no servers to install).

    make demo            # = .venv/bin/python scripts/demo.py   (Ctrl-C stops everything)
    .venv/bin/python scripts/demo.py --exit     # stop after the summary (CI, tests)

Starts Airflow 3 (api-server, scheduler, dag-processor; LocalExecutor; SQLite metadata DB) and
the MLflow UI, all on 127.0.0.1, loads airflow_settings.yaml, then drives the loop through
Airflow's public interfaces: churn_training (REST trigger) → simulated days ending today (--days,
18 by default): a few stable ones, then simulate's relation_shift (the feature mix and the
feature→churn relation change) → churn_monitoring for yesterday (REST trigger): the shifted day
triggers churn_retraining, whose challenger has learnt the new relation and is promoted →
churn_monitoring unpaused: the scheduler monitors today, a shifted day, whose retraining stops at
the cooldown; the other days backfilled (`airflow backfill create`, which never triggers
retraining) → a summary (each day's monitoring decision, each retraining's decision with its gain
and reason, the aliases), the two URLs and the login. Everything lives under --home (default
.demo/); every process it starts is stopped on exit. Airflow's SQLite connections come from
churnops.orchestration.sqlite, so the backfill's and the scheduler's writes queue instead of failing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from demo_summary import print_summary

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAG_IDS = ("churn_training", "churn_monitoring", "churn_retraining", "churn_rollback")
SHIFTED_TRAINING_DAYS = 1
"""Shifted days the challenger learns from before the evaluation window (simulate's relation_shift)."""


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


class Demo:
    def __init__(self, home: Path, airflow_port: int, mlflow_port: int) -> None:
        import httpx

        self.home = home
        self.airflow_home, self.churnops_home, self.logs = home / "airflow", home / "churnops", home / "logs"
        for folder in (self.airflow_home, self.churnops_home, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.airflow_url = f"http://127.0.0.1:{airflow_port}"
        self.mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        self.mlflow_port = mlflow_port
        secret_file = home / ".jwt_secret"  # kept across restarts of the demo, never committed
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(96))
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "MLFLOW_", "CHURNOPS_"))
        }
        self.env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{self.env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home / 'airflow.db'}",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "churnops.orchestration.sqlite.CONNECT_ARGS",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(airflow_port),
                "AIRFLOW__API__BASE_URL": self.airflow_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.airflow_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text(),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port(0)),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "CHURNOPS_HOME": str(self.churnops_home),
                "CHURNOPS_MLFLOW_UI_URL": self.mlflow_url,  # links from the Airflow UI
            }
        )
        self.processes: dict[str, subprocess.Popen] = {}
        self.http = httpx.Client(base_url=self.airflow_url, timeout=30)

    # -- processes --------------------------------------------------------------------------------
    def run(self, *args: str, attempts: int = 1) -> str:
        for attempt in range(attempts):
            done = subprocess.run(
                [str(BIN / args[0]), *args[1:]],
                env=self.env,
                capture_output=True,
                text=True,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
            )
            # SQLite allows one writer: a CLI write racing the scheduler may find it locked; it rolled back.
            if done.returncode == 0 or "database is locked" not in done.stderr:
                break
            time.sleep(2 * (attempt + 1))
        if done.returncode != 0:
            raise SystemExit(f"`{' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.http.close()

    def listening(self) -> list[str]:
        """Every address a process the demo started listens on (its whole process group)."""
        import psutil

        groups = {process.pid for process in self.processes.values()}
        found = set()
        for connection in psutil.net_connections(kind="inet"):
            if connection.status != psutil.CONN_LISTEN or connection.pid is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(connection.pid) in groups:
                    found.add(f"{connection.laddr.ip}:{connection.laddr.port}")
        return sorted(found)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"{name} exited ({process.returncode}); log {self.logs / name}.log:\n{tail}")

    # -- REST -------------------------------------------------------------------------------------
    def password(self) -> str:
        return json.loads((self.airflow_home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]

    def login(self) -> None:
        token = self.http.post("/auth/token", json={"username": "admin", "password": self.password()})
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def api(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:1000]}")
        return response.json() if response.content else {}

    def wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(1)
        raise SystemExit(f"timed out waiting for {what} (logs under {self.logs})")

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        from urllib.parse import quote

        response = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
        return response.json()["state"] if response.status_code == 200 else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> None:
        self.wait(f"{dag_id} {run_id}", lambda: self.run_state(dag_id, run_id) in ("success", "failed"), timeout)
        state = self.run_state(dag_id, run_id)
        if state != "success":
            raise SystemExit(f"{dag_id} run {run_id} ended {state}: see the Airflow UI at {self.airflow_url}")


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".demo", help="where everything is written")
    parser.add_argument("--exit", action="store_true", help="stop every process after the summary")
    parser.add_argument("--airflow-port", type=int, default=8080)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--rows-per-day", type=int, default=2000)
    parser.add_argument(
        "--days",
        type=int,
        default=18,
        help="days simulated, ending today: stable, then the relation shifts (the last 16 with the bundled config)",
    )
    parser.add_argument("--config", type=Path, help="churnops config (default: the bundled Telco config)")
    args = parser.parse_args()
    from churnops.config import DEFAULT_CONFIG_PATH, load_config

    config = load_config(args.config or DEFAULT_CONFIG_PATH)  # what the demo's processes will use
    # Yesterday's retraining scores both models on the matured window (policy.eval_window_days ending
    # label_delay_days before it) and learns from the matured days before that: the shift starts
    # SHIFTED_TRAINING_DAYS before the window, so both see it. Today's retraining then meets the cooldown.
    window = config.policy.eval_window_days + config.monitoring.label_delay_days
    shifted_days = SHIFTED_TRAINING_DAYS + window + 1  # through today
    if args.days < shifted_days + 1:
        parser.error(
            f"--days must be at least {shifted_days + 1}: one stable day, then {shifted_days} shifted days "
            f"(labels mature after {config.monitoring.label_delay_days} days, the evaluation window is "
            f"{config.policy.eval_window_days} days, the challenger learns from {SHIFTED_TRAINING_DAYS} before it)"
        )
    stable_days = args.days - shifted_days
    started = time.monotonic()
    home = args.home.resolve()
    if (home / "churnops").exists():
        raise SystemExit(f"{home} holds an earlier demo: remove it (rm -rf {home}) or pass --home")
    demo = Demo(home, free_port(args.airflow_port), free_port(args.mlflow_port))
    if args.config:
        demo.env["CHURNOPS_CONFIG"] = str(args.config.resolve())

    def on_signal(signum, frame):  # kill: stop what we started, then leave (as on Ctrl-C)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        step(f"Airflow metadata DB (SQLite) and airflow_settings.yaml; logs under {demo.logs}")
        demo.run("airflow", "db", "migrate")
        demo.run("churnops", "airflow-settings", "load", str(ROOT / "airflow_settings.yaml"))
        step("starting the MLflow UI, Airflow api-server, scheduler and dag-processor (127.0.0.1 only)")
        demo.start(
            "mlflow",
            "mlflow",
            "ui",
            "--backend-store-uri",
            f"sqlite:///{demo.churnops_home / 'mlflow.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(demo.mlflow_port),
            "--workers",
            "1",
        )
        demo.start(
            "api-server",
            "airflow",
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            demo.env["AIRFLOW__API__PORT"],
            "--workers",
            "1",
        )
        demo.start("scheduler", "airflow", "scheduler", "--skip-serve-logs")
        demo.start("dag-processor", "airflow", "dag-processor")

        def healthy() -> bool:
            health = demo.http.get("/api/v2/monitor/health").json()
            return all(health[p]["status"] == "healthy" for p in ("metadatabase", "scheduler", "dag_processor"))

        demo.wait("Airflow to be healthy", healthy, 120)
        # The MLflow UI creates the store on start; training waits for it rather than racing it.
        demo.wait("the MLflow UI", lambda: demo.http.get(f"{demo.mlflow_url}/health").status_code == 200, 120)
        demo.login()
        demo.wait(
            "the DAGs to be parsed",
            lambda: (
                {d["dag_id"] for d in demo.api("GET", "/dags", params={"dag_id_pattern": "churn_"})["dags"]}
                >= set(DAG_IDS)
            ),
            120,
        )
        for dag_id in ("churn_training", "churn_retraining", "churn_rollback"):
            demo.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

        step("churn_training: triggered through the REST API")
        demo.api("POST", "/dags/churn_training/dagRuns", json={"dag_run_id": "demo_training", "logical_date": None})
        today = datetime.now(UTC).date()
        first = today - timedelta(days=args.days - 1)
        drift_start = first + timedelta(days=stable_days)
        step(f"simulating {first} … {today}: stable, then the feature→churn relation shifts from {drift_start}")
        demo.run(
            "churnops",
            "simulate",
            "--start",
            first.isoformat(),
            "--days",
            str(stable_days),
            "--scenario",
            "stable",
            "--rows-per-day",
            str(args.rows_per_day),
            "--seed",
            "1",
        )
        demo.run(
            "churnops",
            "simulate",
            "--start",
            drift_start.isoformat(),
            "--days",
            str(shifted_days),
            "--scenario",
            "relation_shift",
            "--drift-start",
            drift_start.isoformat(),
            "--ramp-days",
            "1",
            "--rows-per-day",
            str(args.rows_per_day),
            "--seed",
            "1",
        )
        demo.wait_for_run("churn_training", "demo_training", 300)

        yesterday = today - timedelta(days=1)
        manual = f"manual__{yesterday.isoformat()}"
        step(f"churn_monitoring {yesterday}: triggered through the REST API; a shifted day triggers churn_retraining")
        # run_after = the day: queued ahead of today's scheduled run (max_active_runs is 1), whose
        # retraining therefore starts after this one's decision.
        midnight = f"{yesterday.isoformat()}T00:00:00Z"
        demo.api(
            "POST",
            "/dags/churn_monitoring/dagRuns",
            json={"dag_run_id": manual, "logical_date": midnight, "run_after": midnight},
        )
        step("churn_monitoring unpaused: the scheduler monitors today once that run is done")
        demo.api("PATCH", "/dags/churn_monitoring", json={"is_paused": False})
        last_backfilled = yesterday - timedelta(days=1)
        step(
            f"airflow backfill create --dag-id churn_monitoring --from-date {first} --to-date "
            f"{last_backfilled} (backfills never trigger retraining)"
        )
        demo.run(
            "airflow",
            "backfill",
            "create",
            "--dag-id",
            "churn_monitoring",
            "--from-date",
            first.isoformat(),
            "--to-date",
            last_backfilled.isoformat(),
            "--max-active-runs",
            "3",
            attempts=5,
        )
        demo.wait_for_run("churn_monitoring", manual, 600)
        scheduled = f"scheduled__{today.isoformat()}T00:00:00+00:00"
        demo.wait("today's scheduled monitoring run", lambda: demo.run_state("churn_monitoring", scheduled), 120)
        demo.wait_for_run("churn_monitoring", scheduled, 600)
        for day in (yesterday, today):  # a day that decided to retrain has triggered churn_retraining
            if demo.run_state("churn_retraining", f"monitoring__{day.isoformat()}") is not None:
                demo.wait_for_run("churn_retraining", f"monitoring__{day.isoformat()}", 600)
        for day in range(args.days - 2):
            demo.wait_for_run("churn_monitoring", f"backfill__{first + timedelta(days=day)}T00:00:00+00:00", 600)
        print_summary(demo, config, first, today, time.monotonic() - started)
        if args.exit:
            return 0
        print("Both UIs stay up until Ctrl-C.", flush=True)
        while True:
            demo.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        print("\nstopping every process the demo started …", flush=True)
        return 0
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
