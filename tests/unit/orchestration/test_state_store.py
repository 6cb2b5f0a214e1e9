"""churnops.orchestration.state_store: the CLI's promotion state is in the Airflow Variables wherever an
Airflow is configured, in a file only where none is; ``CHURNOPS_STATE`` chooses explicitly."""

from __future__ import annotations

import pytest

from churnops.errors import ChurnopsInputError
from churnops.orchestration import airflow_configuration, open_promotion_state

AIRFLOW_ENV = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
    "AIRFLOW_CONFIG",
    "AIRFLOW_HOME",
)


@pytest.fixture
def no_airflow(tmp_path, monkeypatch):
    """A machine with no Airflow configured: none of its variables, an empty home (so no ~/airflow)."""
    for name in (*AIRFLOW_ENV, "CHURNOPS_STATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "churnops"))
    return tmp_path


def test_no_airflow_configured_means_the_file_store(no_airflow):
    assert airflow_configuration() is None
    store = open_promotion_state(cooldown_days=5)
    assert store.kind == "file"
    assert store.describe() == f"file ({no_airflow / 'churnops' / 'state' / 'promotion.json'})"
    store.state.record_promotion({"date": "2026-06-01", "version": "2"})
    assert store.state.last_promotion() == {"date": "2026-06-01", "version": "2"}
    assert store.state.cooldown_days(7) == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow@db/airflow"),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD", "cat /run/secrets/airflow-db"),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET", "airflow-db"),
    ],
)
def test_a_metadata_db_in_the_environment_means_airflow(no_airflow, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    assert airflow_configuration() == variable


def test_an_airflow_cfg_in_airflow_home_or_at_airflow_config_means_airflow(no_airflow, monkeypatch):
    home = no_airflow / "airflow-home"
    home.mkdir()
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    assert airflow_configuration() is None, "an AIRFLOW_HOME without a configuration is no deployment"
    (home / "airflow.cfg").write_text("[core]\n")
    assert airflow_configuration() == str(home / "airflow.cfg")

    monkeypatch.delenv("AIRFLOW_HOME")
    elsewhere = no_airflow / "etc" / "airflow.cfg"
    elsewhere.parent.mkdir()
    elsewhere.write_text("[core]\n")
    monkeypatch.setenv("AIRFLOW_CONFIG", str(elsewhere))
    assert airflow_configuration() == str(elsewhere)


def test_the_default_airflow_home_counts_like_airflow_itself(no_airflow):
    default = no_airflow / "home" / "airflow"
    default.mkdir(parents=True)
    (default / "airflow.cfg").write_text("[core]\n")
    assert airflow_configuration() == str(default / "airflow.cfg")


def test_churnops_state_file_chooses_the_file_even_with_airflow_configured(no_airflow, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow@db/airflow")
    monkeypatch.setenv("CHURNOPS_STATE", "file")
    assert open_promotion_state(cooldown_days=7).kind == "file"


@pytest.mark.parametrize("value", ["variables", "db", "none"])
def test_an_unknown_churnops_state_is_bad_input(no_airflow, monkeypatch, value):
    monkeypatch.setenv("CHURNOPS_STATE", value)
    with pytest.raises(ChurnopsInputError, match="CHURNOPS_STATE.*auto, airflow, file"):
        open_promotion_state(cooldown_days=7)
