"""``churnops airflow-settings load`` into a real (SQLite) Airflow metadata DB, through Airflow's CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from tests.helpers import ROOT

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("settings-airflow")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "no-dags"),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        }
    )
    run(env, "airflow", "db", "migrate")
    return env


def run(env, program, *args):
    done = subprocess.run([str(BIN / program), *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, f"{program} {' '.join(args)}: {done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    return done.stdout


def exported(env):
    """What the metadata DB holds (read directly: each ``airflow … export`` costs seconds)."""
    import sqlite3

    fernet = Fernet(env["AIRFLOW__CORE__FERNET_KEY"])

    def plain(value):
        try:
            return fernet.decrypt(value.encode()).decode()
        except (InvalidToken, AttributeError):
            return value

    db = sqlite3.connect(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
    try:
        return {
            "pools": db.execute("select pool, slots, description from slot_pool order by pool").fetchall(),
            "variables": [
                (key, plain(val), description)
                for key, val, description in db.execute("select key, val, description from variable order by key")
            ],
            "connections": [
                (*row[:-1], plain(row[-1]))
                for row in db.execute(
                    "select conn_id, conn_type, host, schema, port, extra from connection order by conn_id"
                )
            ],
        }
    finally:
        db.close()


def test_load_is_idempotent_and_keeps_operator_changes(airflow_env):
    import sqlite3

    loaded = json.loads(run(airflow_env, "churnops", "airflow-settings", "load", "--json"))
    assert loaded["pools"] == ["churnops_promotion"] and loaded["variables"] == ["churnops_cooldown_days"]
    first = exported(airflow_env)
    assert ("churnops_promotion", 1) in [row[:2] for row in first["pools"]]
    assert [row[:2] for row in first["variables"]] == [("churnops_cooldown_days", "7")]
    assert [row[:5] for row in first["connections"]] == [("mlflow_default", "http", "127.0.0.1", "http", 5000)]

    run(airflow_env, "churnops", "airflow-settings", "load", str(ROOT / "airflow_settings.yaml"))
    assert exported(airflow_env) == first, "loading twice changed something"

    # An operator shortens the cooldown in the UI; a restart of the stack reloads the file.
    with sqlite3.connect(airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")) as db:
        db.execute(
            "update variable set val = ? where key = 'churnops_cooldown_days'",
            (Fernet(airflow_env["AIRFLOW__CORE__FERNET_KEY"]).encrypt(b"3").decode(),),
        )
    run(airflow_env, "churnops", "airflow-settings", "load")
    assert [row[:2] for row in exported(airflow_env)["variables"]] == [("churnops_cooldown_days", "3")]
    run(airflow_env, "churnops", "airflow-settings", "load", "--overwrite")
    assert exported(airflow_env) == first


def test_a_bad_file_exits_2_with_one_line(airflow_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("airflow:\n  pools:\n    - pool_name: p\n")
    done = subprocess.run(
        [str(BIN / "churnops"), "airflow-settings", "load", str(bad)], env=airflow_env, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "pool_slot" in done.stderr, done.stderr
