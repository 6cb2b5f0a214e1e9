"""One store of the promotion state for the CLI and the DAGs (``churnops retrain / rollback / status``).

With an Airflow configured (this test process's throwaway AIRFLOW_HOME and SQLite metadata DB, see
tests/conftest.py), the CLI reads and writes the same Airflow Variables as the DAGs: a CLI rollback
is what ``airflow variables get`` then shows, a DAG's rollback is what ``churnops status`` shows and
what the CLI's cooldown obeys. With no Airflow at all, the file. An Airflow configured but
unreachable is an error, never a silent fall-back to the file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

from churnops.cli import main
from tests.helpers import ROOT, write_config

pytestmark = pytest.mark.e2e

AIRFLOW = Path(sys.executable).parent / "airflow"
MODEL = "state-test-model"
VARIABLES = ("churnops_last_promotion", "churnops_cooldown_days")


def run_cli(capsys, *argv: str) -> tuple[int, dict | str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


def airflow_cli(*args: str) -> str:
    """Airflow's own command line, in this process's Airflow environment (and its Fernet key)."""
    from airflow.configuration import conf

    env = {**os.environ, "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key")}
    done = subprocess.run(
        [str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"airflow {' '.join(args)}: {done.returncode}\n{done.stderr[-2000:]}"
    return done.stdout.strip()


def delete_variables() -> None:
    from airflow.models import Variable  # the test's own set-up, outside any task

    for key in VARIABLES:
        Variable.delete(key)  # noqa: AIR311


@pytest.fixture
def two_champions(churnops_home, monkeypatch):
    """Versions 1 and 2 of a registered model, @champion on 2 and @previous_champion on 1; a config naming it."""
    import mlflow
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from churnops.config import load_config
    from churnops.tracking import configure_mlflow, register_version

    config_path = write_config(churnops_home / "config.yaml", registry={"model_name": MODEL})
    monkeypatch.setenv("CHURNOPS_CONFIG", str(config_path))
    config = load_config(config_path)
    experiment_id = configure_mlflow(config)
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(X, y), name="model", serialization_format="cloudpickle"
            )
        register_version(info.model_uri, run.info.run_id, config.registry, {})
    client = MlflowClient()
    client.set_registered_model_alias(MODEL, "champion", "2")
    client.set_registered_model_alias(MODEL, "previous_champion", "1")
    return churnops_home


@pytest.fixture
def airflow_state(airflow_db, two_champions, monkeypatch):
    """The CLI left to choose its store (``CHURNOPS_STATE`` unset) where an Airflow is configured."""
    monkeypatch.delenv("CHURNOPS_STATE", raising=False)
    assert os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"), "tests/conftest.py configures an Airflow"
    delete_variables()
    yield two_champions
    delete_variables()


def test_a_cli_rollback_is_recorded_in_the_airflow_variable_the_dags_read(airflow_state, capsys):
    code, moved, err = run_cli(capsys, "rollback", "--date", "2026-06-01", "--reason", "bad calls", "--json")
    assert code == 0, err
    assert moved == {"champion": "1", "previous_champion": "2", "resumed": False}

    recorded = json.loads(airflow_cli("variables", "get", "churnops_last_promotion"))
    assert (recorded["date"], recorded["version"], recorded["previous_version"]) == ("2026-06-01", "1", "2")
    assert recorded["rolled_back"] is True and recorded["run_id"] == "rollback__2026-06-01"
    assert not (airflow_state / "state" / "promotion.json").exists(), "no second store"

    code, status, err = run_cli(capsys, "status", "--json", "--date", "2026-06-03")
    assert code == 0, err
    assert status["state_store"] == f"airflow-variables ({os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']})"
    assert status["last_promotion"] == recorded
    assert (status["cooldown_days"], status["cooldown_active"], status["cooldown_days_left"]) == (7, True, 5)


def test_a_dag_rollback_shows_in_status_and_holds_the_cli_retraining_in_its_cooldown(airflow_state, capsys):
    from airflow.dag_processing.dagbag import DagBag

    rollback_dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("churn_rollback")
    run = rollback_dag.test(
        logical_date=pendulum.datetime(2026, 6, 10, tz="UTC"), run_conf={"reason": "rolled back from the UI"}
    )
    assert str(run.state) == "success"
    capsys.readouterr()  # the DAG run's own log lines
    airflow_cli("variables", "set", "churnops_cooldown_days", "3")  # an operator shortens the cooldown

    code, status, err = run_cli(capsys, "status", "--json", "--date", "2026-06-12")
    assert code == 0, err
    assert status["state_store"].startswith("airflow-variables (sqlite:///")
    assert (status["champion"], status["previous_champion"]) == ("1", "2")
    last = status["last_promotion"]
    assert (last["date"], last["version"], last["run_id"]) == ("2026-06-10", "1", run.run_id), last
    assert (status["cooldown_days"], status["cooldown_active"], status["cooldown_days_left"]) == (3, True, 1)

    code, verdict, err = run_cli(capsys, "retrain", "--date", "2026-06-12", "--json")
    assert code == 0, err
    assert verdict["decision"] == "skipped" and "in cooldown" in verdict["reason"], verdict


def test_without_airflow_the_cli_keeps_its_state_in_the_file(two_champions, tmp_path, monkeypatch, capsys):
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW_CONFIG", "CHURNOPS_STATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "no-airflow"))

    code, _, err = run_cli(capsys, "rollback", "--date", "2026-06-01", "--json")
    assert code == 0, err
    path = two_champions / "state" / "promotion.json"
    assert json.loads(path.read_text())["churnops_last_promotion"]["version"] == "1"
    code, status, err = run_cli(capsys, "status", "--json")
    assert code == 0, err
    assert status["state_store"] == f"file ({path})"
    assert status["last_promotion"]["run_id"] == "rollback__2026-06-01"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        pytest.param(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://airflow:s3cret@127.0.0.1:{closed_port()}/af"
            },
            "Connection refused",
            id="database-server-down",
        ),
        pytest.param({"CHURNOPS_STATE": "airflow"}, "the database file does not exist", id="no-metadata-db"),
    ],
)
def test_an_airflow_configured_but_unreachable_fails_clearly_and_writes_no_file(tmp_path, settings, says):
    """In a process of its own: this one's Airflow is bound to the test metadata DB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CHURNOPS_"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), CHURNOPS_HOME=str(tmp_path / "churnops"), **settings)
    (tmp_path / "airflow").mkdir()
    for command in (["status"], ["rollback", "--date", "2026-06-01"]):
        done = subprocess.run(
            [sys.executable, "-m", "churnops.cli", *command, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert done.returncode == 1, (done.returncode, done.stdout, done.stderr[-3000:])
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"churnops {command[0]}: error: the promotion state lives in Airflow Variables")
        assert says in done.stderr and "s3cret" not in done.stderr
    assert not (tmp_path / "churnops" / "state").exists(), "no fall-back to the file"
    assert not (tmp_path / "airflow" / "airflow.db").exists(), "no empty metadata DB left behind"


def test_a_record_the_cli_cannot_decrypt_fails_clearly_instead_of_reading_as_no_promotion(airflow_db, tmp_path):
    """Airflow's own ``Variable.get`` answers None for a value encrypted with another Fernet key: no cooldown."""
    import sqlite3

    from cryptography.fernet import Fernet

    database = tmp_path / "airflow.db"
    with sqlite3.connect(airflow_db / "airflow.db") as source, sqlite3.connect(database) as copy:
        source.backup(copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CHURNOPS_"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{database}",
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),  # the deployment's key
        CHURNOPS_HOME=str(tmp_path / "churnops"),
    )
    record = json.dumps({"date": "2026-06-10", "version": "2"})
    subprocess.run(
        [str(AIRFLOW), "variables", "set", "churnops_last_promotion", record],
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    env["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()  # a CLI with another key
    done = subprocess.run(
        [sys.executable, "-m", "churnops.cli", "status", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and done.stdout == "", (done.returncode, done.stdout, done.stderr[-3000:])
    assert "churnops_last_promotion cannot be decrypted with this Fernet key" in done.stderr.splitlines()[-1]
