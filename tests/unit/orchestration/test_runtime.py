"""churnops.orchestration.runtime: confined config paths, the failure policy and a task's MLflow run link."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnops.errors import ChurnopsInputError
from churnops.orchestration.runtime import CONFIG_PATH_PATTERN, allowed_config_roots, confined_config_path
from tests.helpers import ROOT, TELCO_CONFIG, TELCO_DATA, edit_config, write_config


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CHURNOPS_HOME", str(home))
    monkeypatch.delenv("CHURNOPS_CONFIG", raising=False)
    monkeypatch.delenv("CHURNOPS_ALLOWED_PATHS", raising=False)
    return home


def test_empty_means_the_default(home):
    assert confined_config_path(None) is None and confined_config_path("") is None


def test_configs_in_the_project_or_churnops_home_are_allowed(home):
    assert allowed_config_roots()[:2] == [ROOT.resolve(), home]  # the whole project, not only include/
    assert confined_config_path(str(TELCO_CONFIG)) == str(TELCO_CONFIG.resolve())
    write_config(home / "mine.yml")  # its sources: the shipped data, inside the project
    assert confined_config_path(str(home / "mine.yml")) == str((home / "mine.yml").resolve())
    # relative parts are resolved before the check
    assert confined_config_path(str(home / "sub" / ".." / "mine.yml")) == str((home / "mine.yml").resolve())


@pytest.mark.parametrize("value", ["/etc/passwd", "../../etc/shadow", "/etc/churnops.yaml", "/tmp/../etc/x.yml"])
def test_paths_outside_or_not_yaml_are_bad_input(home, value):
    with pytest.raises(ChurnopsInputError, match="config_path"):
        confined_config_path(value)


def test_a_symlink_out_of_churnops_home_is_refused(home, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("dataset: {}\n")
    (home / "link.yaml").symlink_to(outside)
    with pytest.raises(ChurnopsInputError, match="outside the allowed folders"):
        confined_config_path(str(home / "link.yaml"))


def test_operators_can_allow_more_folders(home, tmp_path, monkeypatch):
    shared = tmp_path / "shared-configs"
    shared.mkdir()
    write_config(shared / "a.yaml")
    with pytest.raises(ChurnopsInputError):
        confined_config_path(str(shared / "a.yaml"))
    monkeypatch.setenv("CHURNOPS_ALLOWED_PATHS", str(shared))
    assert confined_config_path(str(shared / "a.yaml")) == str(shared / "a.yaml")
    (tmp_path / "elsewhere").mkdir()
    write_config(tmp_path / "elsewhere" / "d.yaml")
    monkeypatch.setenv("CHURNOPS_CONFIG", str(tmp_path / "elsewhere" / "c.yaml"))  # its folder is allowed too
    assert confined_config_path(str(tmp_path / "elsewhere" / "d.yaml")).endswith("d.yaml")


def _with_sources_in(folder, config):
    """``config`` (a copy of the Telco config) reading copies of the shipped sources in ``folder``."""
    import shutil

    def copy_sources(raw: dict) -> None:
        for source in raw["dataset"]["sources"]:
            copy = folder / Path(source["path"]).name
            shutil.copyfile(TELCO_DATA / copy.name, copy)
            source["path"] = str(copy)

    folder.mkdir(parents=True, exist_ok=True)
    return edit_config(config, copy_sources)


@pytest.mark.parametrize("source_path", ["../../../../../../etc/passwd", "/etc/passwd"])
def test_a_config_naming_a_source_outside_the_allowed_folders_is_bad_input(home, source_path):
    # relative paths resolve against the config's folder
    config = edit_config(
        write_config(home / "mine.yaml"), lambda raw: raw["dataset"]["sources"][0].update(path=source_path)
    )
    with pytest.raises(ChurnopsInputError, match=r"source 'customers' \(/etc/passwd\) is outside the allowed folders"):
        confined_config_path(str(config))


def test_a_source_reached_through_a_symlink_out_of_the_allowed_folders_is_refused(home, tmp_path, monkeypatch):
    config = _with_sources_in(tmp_path / "outside", write_config(home / "mine.yaml"))
    with pytest.raises(ChurnopsInputError, match="outside the allowed folders"):
        confined_config_path(str(config))
    inside = _with_sources_in(home / "data", write_config(home / "inside.yaml"))
    assert confined_config_path(str(inside)) == str(inside.resolve())
    (home / "data" / "customers.csv").unlink()
    (home / "data" / "customers.csv").symlink_to(tmp_path / "outside" / "customers.csv")
    with pytest.raises(ChurnopsInputError, match="source 'customers'"):
        confined_config_path(str(inside))
    monkeypatch.setenv("CHURNOPS_ALLOWED_PATHS", str(tmp_path / "outside"))  # the operator allows that folder
    assert confined_config_path(str(config)) == str(config.resolve())


def test_the_param_pattern_accepts_yaml_paths_only():
    import re

    assert re.match(CONFIG_PATH_PATTERN, str(ROOT / "include" / "config" / "telco.yaml"))
    assert re.match(CONFIG_PATH_PATTERN, "configs/x.yml")
    assert not re.match(CONFIG_PATH_PATTERN, "/etc/passwd")
    assert not re.match(CONFIG_PATH_PATTERN, ".yaml")
    assert re.match(CONFIG_PATH_PATTERN, ""), "empty: the default config"


def test_task_defaults_back_off_exponentially_from_a_configurable_first_delay(monkeypatch):
    from datetime import timedelta

    from churnops.orchestration.runtime import RETRY_DELAY_ENV, task_defaults

    monkeypatch.delenv(RETRY_DELAY_ENV, raising=False)
    defaults = task_defaults()
    assert defaults["retries"] == 3 and defaults["retry_exponential_backoff"] == 2.0
    assert defaults["retry_delay"] == timedelta(seconds=30) and defaults["max_retry_delay"] == timedelta(minutes=10)
    monkeypatch.setenv(RETRY_DELAY_ENV, "2")
    assert task_defaults()["retry_delay"] == timedelta(seconds=2)


def test_an_error_while_the_tracking_server_is_down_becomes_one_clear_retryable_error(home, monkeypatch):
    """Bad input still fails at once; any other error raised while MLflow does not answer is named as the outage."""
    import socket

    from airflow.sdk.exceptions import AirflowFailException

    from churnops.errors import TrackingServerUnavailable
    from churnops.orchestration.runtime import fail_fast_on_bad_input

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")

    def failing(error: Exception):
        raise error

    with pytest.raises(
        TrackingServerUnavailable,
        match=rf"MLflow tracking server http://127.0.0.1:{port} is "
        r"unreachable \(ConnectionError: .*refused.*\).*retried",
    ):
        fail_fast_on_bad_input(failing)(RuntimeError("API request to /api/2.0/mlflow/runs/get failed"))
    assert not issubclass(TrackingServerUnavailable, AirflowFailException), "an outage keeps the task's retries"
    with pytest.raises(AirflowFailException):
        fail_fast_on_bad_input(failing)(ChurnopsInputError("missing column"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the embedded store has no server to be down: errors pass as they are
    with pytest.raises(RuntimeError, match="^boom$"):
        fail_fast_on_bad_input(failing)(RuntimeError("boom"))


# --- the MLflow run link -----------------------------------------------------------------------------------------


class RecordingTaskInstance:
    """Stands in for the running task instance: keeps what the task pushes to XCom."""

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, str]]:
    """The runs ``fail_fast_on_bad_input`` publishes, recorded instead of pushed to XCom."""
    from churnops.orchestration import runtime

    runs: list[tuple[str, str]] = []
    monkeypatch.setattr(
        runtime, "publish_mlflow_run", lambda experiment_id, run_id: runs.append((experiment_id, run_id))
    )
    return runs


def test_the_wrapper_publishes_every_run_announced_during_the_call_and_none_after(published):
    from churnops.orchestration import runtime
    from churnops.tracking import announce_run

    @runtime.fail_fast_on_bad_input
    def step(name: str) -> str:
        """A task function that opens two MLflow runs."""
        announce_run("1", "abc")
        announce_run("1", "def")
        return f"{name} done"

    assert (step.__name__, step.__doc__) == ("step", "A task function that opens two MLflow runs.")
    assert step("train") == "train done"
    assert published == [("1", "abc"), ("1", "def")]
    announce_run("2", "after")  # the task returned: nobody listens any more
    assert published == [("1", "abc"), ("1", "def")]


def test_the_wrapper_stops_publishing_when_the_task_fails(published):
    from airflow.sdk.exceptions import AirflowFailException

    from churnops.orchestration import runtime
    from churnops.tracking import announce_run

    def fails_after_opening_a_run(error: Exception) -> None:
        announce_run("1", "abc")
        raise error

    with pytest.raises(AirflowFailException):
        runtime.fail_fast_on_bad_input(fails_after_opening_a_run)(ChurnopsInputError("missing column"))
    with pytest.raises(ValueError):
        runtime.fail_fast_on_bad_input(fails_after_opening_a_run)(ValueError("a bug"))
    assert published == [("1", "abc"), ("1", "abc")], "a failed task still links to its run"
    announce_run("2", "after")
    assert published == [("1", "abc"), ("1", "abc")]


def test_inside_a_task_the_run_is_pushed_as_the_link_xcom(monkeypatch):
    import airflow.sdk

    from churnops.orchestration.runtime import MLFLOW_RUN_XCOM_KEY, fail_fast_on_bad_input
    from churnops.tracking import announce_run

    ti = RecordingTaskInstance()
    monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: {"ti": ti})
    fail_fast_on_bad_input(announce_run)("7", "run-7")
    assert ti.pushed == {MLFLOW_RUN_XCOM_KEY: "7/run-7"}


def test_outside_a_task_publishing_a_run_does_nothing():
    from churnops.orchestration.runtime import publish_mlflow_run

    assert publish_mlflow_run("1", "abc") is None  # Airflow has no current context here: no error either
