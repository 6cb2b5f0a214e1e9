"""The compose stack's MLflow server, run for real: its command, its auth settings, its credentials.

The ``mlflow`` service's command words from docker-compose.yaml (only the host, port, artifact
folder and allowed hosts changed for this machine) and docker/mlflow/basic_auth.ini (only the
user store's path changed) start a real server on 127.0.0.1, with the environment the service
gets from .env. Anonymous requests are refused, the healthcheck's /health is open, a task's
client logs in with ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, and another
user sees nothing until granted.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.airflow_stack import LEAKY_PREFIXES, free_port, stop_group
from tests.helpers import ROOT

pytest.importorskip("flask_wtf", reason="Flask-WTF (mlflow[auth] in requirements.txt) is not installed")

MLFLOW = Path(sys.executable).parent / "mlflow"


def _service_command(port: int, artifacts: Path) -> list[str]:
    """The compose service's command, pointed at this machine instead of the container's."""
    command = [
        str(word)
        for word in yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]["mlflow"]["command"]
    ]
    here = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--artifacts-destination": str(artifacts),
        "--allowed-hosts": f"127.0.0.1:{port},localhost:{port}",
    }
    for option, value in here.items():
        command[command.index(option) + 1] = value
    return command


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, str]]:
    import httpx

    root = tmp_path_factory.mktemp("mlflow-auth")
    ini = configparser.ConfigParser()
    ini.read(ROOT / "docker" / "mlflow" / "basic_auth.ini")
    ini["mlflow"]["database_uri"] = f"sqlite:///{root / 'basic_auth.db'}"
    with (root / "basic_auth.ini").open("w") as out:
        ini.write(out)
    port = free_port()
    admin_password = secrets.token_urlsafe(24)
    env = {name: value for name, value in os.environ.items() if not name.startswith(LEAKY_PREFIXES)}
    env.update(
        {  # what the compose service's `environment:` gives it
            "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{root / 'mlflow.db'}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_AUTH_CONFIG_PATH": str(root / "basic_auth.ini"),
            "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
            "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        }
    )
    command = _service_command(port, root / "artifacts")
    assert command[:2] == ["mlflow", "server"]
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [str(MLFLOW), *command[1:]],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited {process.returncode}:\n{(root / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up in 180 s:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield {"uri": uri, "admin_password": admin_password}
    finally:
        stop_group(process, timeout=30)
        log.close()


def test_anonymous_requests_are_refused_and_health_stays_open(server):
    import httpx

    search = f"{server['uri']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert httpx.get(f"{server['uri']}/health").status_code == 200  # the compose healthcheck
    assert httpx.get(search).status_code == 401
    assert httpx.get(search, auth=("admin", server["admin_password"] + "x")).status_code == 401
    assert httpx.get(search, auth=("admin", server["admin_password"])).status_code == 200


def test_a_task_logs_runs_and_artifacts_with_the_env_credentials(server, monkeypatch, tmp_path):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server["admin_password"])
    client = MlflowClient(server["uri"])
    experiment_id = client.create_experiment("churnops-auth-check")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "roc_auc", 0.86)
    (tmp_path / "note.txt").write_text("through the artifact proxy")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    assert client.get_run(run.info.run_id).data.metrics == {"roc_auc": 0.86}


def test_another_user_sees_nothing_until_granted(server, monkeypatch):
    import httpx
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server["admin_password"])
    experiment_id = MlflowClient(server["uri"]).create_experiment("churnops-private")
    reader_password = secrets.token_urlsafe(16)
    created = httpx.post(
        f"{server['uri']}/api/2.0/mlflow/users/create",
        json={"username": "reader", "password": reader_password},
        auth=("admin", server["admin_password"]),
    )
    assert created.status_code == 200, created.text

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "reader")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", reader_password)
    with pytest.raises(MlflowException, match="Permission denied"):
        MlflowClient(server["uri"]).get_experiment(experiment_id)
    registered = f"{server['uri']}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(registered, auth=("reader", reader_password)).json().get("registered_models", []) == []
