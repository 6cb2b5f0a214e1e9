"""The whole churnops loop on this machine, on the embedded default (SQLite, no servers to install).

    make demo            # = .venv/bin/python scripts/demo.py   (Ctrl-C stops everything)
    .venv/bin/python scripts/demo.py --exit     # stop after the summary (CI, tests)

Starts Airflow 3 (api-server, scheduler, dag-processor; LocalExecutor; SQLite metadata DB) and
the MLflow UI, all on 127.0.0.1, loads airflow_settings.yaml, then drives the loop through
Airflow's public interfaces: churn_training (REST trigger) → simulated days ending today
(--days, 15 by default), the second half drifting → churn_monitoring unpaused (the scheduler
monitors today, a drifted day, and triggers churn_retraining) and the days before it backfilled
(`airflow backfill create`, which never triggers retraining) → a summary, the two URLs and
the login. Everything lives under --home (default .demo/); every process it starts is stopped
on exit. Airflow's SQLite connections come from churnops.orchestration.sqlite, so the backfill's and
the scheduler's writes queue instead of failing.
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAG_IDS = ("churn_training", "churn_monitoring", "churn_retraining", "churn_rollback")


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
        "--days", type=int, default=15, help="days simulated, ending today: the first half stable, the rest drifting"
    )
    parser.add_argument("--config", type=Path, help="churnops config (default: the bundled Telco config)")
    args = parser.parse_args()
    from churnops.config import DEFAULT_CONFIG_PATH, load_config

    config = load_config(args.config or DEFAULT_CONFIG_PATH)  # what the demo's processes will use
    # churn_retraining scores both models on matured labels: some must exist by today.
    fewest_days = config.monitoring.label_delay_days + 2
    if args.days < fewest_days:
        parser.error(
            f"--days must be at least {fewest_days}: labels mature after "
            f"{config.monitoring.label_delay_days} days and the retraining needs some"
        )
    stable_days, drift_days = args.days // 2, args.days - args.days // 2  # today is the last drifted day
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
        step(f"simulating {first} … {today}: stable, then drifting from {drift_start}")
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
            str(drift_days),
            "--scenario",
            "mixed",
            "--drift-start",
            drift_start.isoformat(),
            "--ramp-days",
            str(min(3, drift_days)),
            "--rows-per-day",
            str(args.rows_per_day),
            "--seed",
            "1",
        )
        demo.wait_for_run("churn_training", "demo_training", 300)

        step("churn_monitoring unpaused: the scheduler monitors today; a drifted day triggers churn_retraining")
        demo.api("PATCH", "/dags/churn_monitoring", json={"is_paused": False})
        scheduled = f"scheduled__{today.isoformat()}T00:00:00+00:00"
        demo.wait("today's scheduled monitoring run", lambda: demo.run_state("churn_monitoring", scheduled), 60)
        step(
            f"airflow backfill create --dag-id churn_monitoring --from-date {first} --to-date "
            f"{today - timedelta(days=1)} (backfills never trigger retraining)"
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
            (today - timedelta(days=1)).isoformat(),
            "--max-active-runs",
            "3",
            attempts=5,
        )
        demo.wait_for_run("churn_monitoring", scheduled, 300)
        for day in range(args.days - 1):
            demo.wait_for_run("churn_monitoring", f"backfill__{first + timedelta(days=day)}T00:00:00+00:00", 600)
        retraining = f"monitoring__{today.isoformat()}"
        if demo.run_state("churn_retraining", retraining) is not None:
            demo.wait_for_run("churn_retraining", retraining, 600)
        print_summary(demo, first, today, retraining, time.monotonic() - started)
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


def print_summary(demo: Demo, first: date, today: date, retraining: str, elapsed: float) -> None:
    status = json.loads(demo.run("churnops", "status", "--json", "--date", today.isoformat()))
    decisions = []
    for offset in range((today - first).days + 1):
        day = first + timedelta(days=offset)
        report = demo.churnops_home / "reports" / f"date={day}" / "drift_report.json"
        decision = json.loads(report.read_text())["decision"] if report.exists() else "(no report)"
        decisions.append((day, decision))
    summary = {
        "champion": status["champion"],
        "previous_champion": status["previous_champion"],
        "challenger": status["challenger"],
        "monitoring": {d.isoformat(): decision for d, decision in decisions},
        "retraining_run": retraining,
        "retraining_state": demo.run_state("churn_retraining", retraining),
        "last_decision": status["last_decision"],
        "reports": str(demo.churnops_home / "reports"),
        "seconds": round(elapsed, 1),
        "listening": demo.listening(),  # local mode: every one on 127.0.0.1
    }
    (demo.home / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n==> Summary")
    print(
        f"    model {status['model_name']}: @champion v{status['champion']}, "
        f"@previous_champion {status['previous_champion'] and 'v' + str(status['previous_champion'])}, "
        f"@challenger {status['challenger'] and 'v' + str(status['challenger'])}"
    )
    for day, decision in decisions:
        print(f"    {day}  monitoring decision: {decision}")
    print(f"    churn_retraining {retraining}: {summary['retraining_state']}")
    if status["last_decision"]:
        decision = status["last_decision"]
        print(f"    decision on v{decision['version']}: {decision['decision']} ({decision['reason']})")
    print(f"    reports: {summary['reports']}/date=YYYY-MM-DD/ (drift_report.json, drift_report.html)")
    print(f"    summary: {demo.home / 'summary.json'}  ({elapsed:.0f} s)")
    print(f"\n    Airflow UI  {demo.airflow_url}   login: admin / {demo.password()}")
    print(f"    MLflow UI   {demo.mlflow_url}\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
