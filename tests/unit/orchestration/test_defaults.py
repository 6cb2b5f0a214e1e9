"""churnops.orchestration.defaults: the start date, run limits, tags, retries and Params every DAG shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from churnops.config import MODEL_FAMILIES, OrchestrationConfig
from churnops.orchestration.defaults import START_DATE, common_params, dag_settings, families_param
from churnops.orchestration.runtime import CONFIG_PATH_PATTERN, RETRY_DELAY_ENV, task_defaults


@pytest.fixture(autouse=True)
def default_retry_delay(monkeypatch):
    """The first retry delay of a plain deployment (the fault tests shorten it through the environment)."""
    monkeypatch.delenv(RETRY_DELAY_ENV, raising=False)


def test_dag_settings_give_every_dag_the_same_header():
    settings = dag_settings("training", "weekly")
    assert set(settings) == {"start_date", "catchup", "max_active_runs", "tags", "default_args"}
    assert settings["catchup"] is False and settings["max_active_runs"] == 1
    assert settings["tags"] == ["churnops", "training", "weekly"]
    every_task = OrchestrationConfig().default_timeout_minutes
    assert without_callbacks(settings["default_args"]) == task_defaults(timeout_minutes=every_task)
    assert settings["default_args"]["retries"] == 3
    assert settings["default_args"]["execution_timeout"] == timedelta(minutes=every_task)


def without_callbacks(default_args: dict) -> dict:
    return {k: v for k, v in default_args.items() if k != "on_failure_callback"}


def test_a_task_that_fails_for_good_alerts_through_the_notifier():
    from churnops.orchestration.notifier import ALERTS_CONN_ID, ChurnopsNotifier

    (notifier,) = dag_settings()["default_args"]["on_failure_callback"]
    assert isinstance(notifier, ChurnopsNotifier) and notifier.alert is None and notifier.conn_id == ALERTS_CONN_ID
    assert "on_retry_callback" not in dag_settings()["default_args"], "a retry is not worth an alert"


def test_the_start_date_is_a_fixed_day_in_utc():
    first = dag_settings()["start_date"]
    assert first == START_DATE == datetime(2026, 1, 1, tzinfo=UTC)
    assert first.utcoffset() == timedelta(0)
    assert dag_settings()["start_date"] == first, "never now(): every parse gives the same date"


def test_dag_settings_pass_the_retries_on_and_share_no_mutable_state():
    every_task = OrchestrationConfig().default_timeout_minutes
    assert without_callbacks(dag_settings(retries=0)["default_args"]) == task_defaults(0, timeout_minutes=every_task)
    one = dag_settings("monitoring")
    one["tags"].append("changed by one DAG")
    one["default_args"]["retries"] = 9
    other = dag_settings("monitoring")
    assert other["tags"] == ["churnops", "monitoring"] and other["default_args"]["retries"] == 3


def test_the_families_param_offers_exactly_the_model_families():
    param = families_param()
    assert param.value is None, "no choice: the config's list"
    assert param.schema["items"]["enum"] == list(MODEL_FAMILIES)
    assert param.resolve(list(MODEL_FAMILIES)) == list(MODEL_FAMILIES)
    assert param.resolve(None) is None


@pytest.mark.parametrize(
    ("choice", "why"),
    [
        pytest.param(["linear_svm"], "is not one of", id="unknown-family"),
        pytest.param([MODEL_FAMILIES[0]] * 2, "non-unique", id="repeated-family"),
        pytest.param(MODEL_FAMILIES[0], "is not of type", id="not-a-list"),
    ],
)
def test_the_families_param_refuses_what_is_not_a_subset_of_the_families(choice, why):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=why):
        families_param().resolve(choice)


def test_common_params_are_the_confined_config_path():
    from airflow.sdk.exceptions import ParamValidationError

    params = common_params()
    assert list(params) == ["config_path"]
    config_path = params["config_path"]
    assert config_path.value is None and config_path.schema["pattern"] == CONFIG_PATH_PATTERN
    assert config_path.resolve("configs/mine.yaml") == "configs/mine.yaml"
    with pytest.raises(ParamValidationError, match="does not match"):
        config_path.resolve("secrets.txt")


def test_the_timeouts_come_from_the_deployment_config_and_follow_its_changes(tmp_path, monkeypatch):
    from churnops.config import STEP_TIMEOUT_MINUTES
    from churnops.orchestration.defaults import deployment_orchestration
    from tests.helpers import edit_config, write_config

    assert deployment_orchestration() == OrchestrationConfig(), "the bundled config keeps the defaults"
    config = write_config(tmp_path / "config.yaml", orchestration={"timeout_minutes": {"train": 600}})
    monkeypatch.setenv("CHURNOPS_CONFIG", str(config))
    chosen = deployment_orchestration()
    assert chosen.timeout_for("train") == 600
    assert chosen.timeout_for("merge") == STEP_TIMEOUT_MINUTES["merge"], "the other steps keep their sizes"
    assert chosen.timeout_for("a_task_of_tomorrow") == chosen.default_timeout_minutes
    edit_config(config, lambda raw: raw["orchestration"].update(default_timeout_minutes=90.5))
    assert deployment_orchestration().default_timeout_minutes == 90.5, "an edited file is read again"


@pytest.mark.parametrize(
    ("section", "why"),
    [
        pytest.param({"timeout_minutes": {"trian": 60}}, "unknown task ids", id="misspelt-step"),
        pytest.param({"timeout_minutes": {"train": 0}}, "greater than 0", id="zero"),
        pytest.param({"default_timeout_minutes": -1}, "greater than 0", id="negative-default"),
        pytest.param({"timeouts": {}}, "Extra inputs", id="unknown-key"),
    ],
)
def test_a_bad_orchestration_section_fails_the_parse_naming_it(tmp_path, monkeypatch, section, why):
    from churnops.config import ConfigError
    from churnops.orchestration.defaults import deployment_orchestration
    from tests.helpers import write_config

    monkeypatch.setenv("CHURNOPS_CONFIG", str(write_config(tmp_path / "config.yaml", orchestration=section)))
    with pytest.raises(ConfigError, match=f"orchestration.*{why}"):
        deployment_orchestration()
