"""A registered model whose files changed after registration: monitoring and retraining refuse it, at once
and without retries, and publish or promote nothing; the same model intact loads as before."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from churnops.cli import main
from tests.helpers import churnops_environment, write_config

pytestmark = pytest.mark.e2e

D0 = date(2026, 10, 1)
MODEL = "churn-predictor"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A champion (v1) trained by ``churnops train`` and 12 simulated days."""
    root = tmp_path_factory.mktemp("integrity-home")
    config = write_config(
        root / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        policy={"bootstrap_samples": 50},
        monitoring={"html_report": False},
    )
    with churnops_environment(root, config):
        assert main(["train"]) == 0
        assert (
            main(["simulate", "--start", D0.isoformat(), "--days", "12", "--rows-per-day", "400", "--seed", "3"]) == 0
        )
        yield root


def artifact_folder(version: str) -> Path:
    """The version's files in the artifact store (``$CHURNOPS_HOME/mlartifacts``)."""
    from mlflow import MlflowClient

    from churnops.tracking import use_tracking_store

    use_tracking_store()
    uri = MlflowClient().get_model_version_download_uri(MODEL, version)
    return Path(url2pathname(urlparse(uri).path))


@contextmanager
def tampered(path: Path, change: Callable[[bytes], bytes]) -> Iterator[None]:
    """``path`` rewritten by ``change`` for the block, as someone with write access to the store would."""
    original = path.read_bytes()
    path.write_bytes(change(original))
    try:
        yield
    finally:
        path.write_bytes(original)


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_training_records_one_digest_in_mlflow_and_in_churnops_record(home):
    from mlflow import MlflowClient

    from churnops.config import load_config
    from churnops.tracking import ARTIFACT_DIGEST_TAG, artifact_digest, digest_record_path

    registry = load_config().registry
    version = MlflowClient().get_model_version(MODEL, "1")
    record = json.loads(digest_record_path(registry, "1").read_text())
    assert record["artifact_sha256"] == version.tags[ARTIFACT_DIGEST_TAG], "the two records agree"
    assert record["artifact_sha256"] == artifact_digest(artifact_folder("1")).sha256, "and describe the stored files"
    assert (record["version"], record["run_id"], record["origin"]) == ("1", version.run_id, "registered")
    assert {"model.pkl", "MLmodel", "code/churnops/features.py"} <= set(record["files"]), "the shipped code too"


def test_monitoring_refuses_a_changed_champion_and_publishes_nothing(home, capsys):
    from airflow.sdk.exceptions import AirflowFailException

    from churnops.config import load_config
    from churnops.monitoring import load_model
    from churnops.orchestration import fail_fast_on_bad_input

    day = D0 + timedelta(days=9)
    folder = artifact_folder("1")
    with tampered(folder / "model.pkl", lambda data: data + b"\x00appended after registration"):
        code, err = run(capsys, "monitor", "--date", day.isoformat())
        assert code == 2, "bad input for churnops: exit status 2, one line"
        assert f"refusing to load {MODEL} version 1" in err and "changed: model.pkl" in err
        from churnops.tracking import ARTIFACT_DIGEST_TAG, artifact_digest, version_tags

        expected = version_tags(load_config().registry, "1")[ARTIFACT_DIGEST_TAG]
        assert expected in err and artifact_digest(folder).sha256 in err, "both digests named"
        assert not (home / "predictions" / f"date={day}").exists(), "nothing scored, nothing published"
        assert not (home / "reports" / f"date={day}").exists()
    with tampered(folder / "MLmodel", lambda data: data + b"\n# edited after registration\n"):
        # What every monitoring task runs under: the refusal fails the task without retries.
        with pytest.raises(AirflowFailException, match="changed: MLmodel"):
            fail_fast_on_bad_input(load_model)(load_config(), "1")

    code, err = run(capsys, "monitor", "--date", day.isoformat())
    assert code == 0, err
    assert (home / "predictions" / f"date={day}" / "predictions.parquet").is_file(), "the intact model scores"


def test_retraining_refuses_a_changed_version_and_promotes_nothing(home, capsys):
    from churnops.config import load_config
    from churnops.retraining import compare_on_fresh_window
    from churnops.tracking import alias_version, last_decision, version_tags

    registry = load_config().registry
    as_of = D0 + timedelta(days=11)
    with tampered(artifact_folder("1") / "model.pkl", lambda data: data + b"\x00"):
        code, err = run(capsys, "retrain", "--date", as_of.isoformat())
    assert code == 2 and f"refusing to load {MODEL} version 1" in err
    assert alias_version(registry, "champion") == "1" and alias_version(registry, "challenger") == "2"
    assert "churnops.decision" not in version_tags(registry, "2") and last_decision(registry) is None
    # The challenger was trained and registered: an attempt (the retraining cooldown), never a promotion.
    recorded = json.loads((home / "state" / "promotion.json").read_text())
    assert "churnops_last_promotion" not in recorded, "no promotion recorded"
    assert (recorded["churnops_last_retraining"]["date"], recorded["churnops_last_retraining"]["version"]) == (
        as_of.isoformat(),
        "2",
    )

    # The challenger changed after its registration: the comparison refuses it too.
    run_dir = home / "runs" / "telco" / "cli-retrain" / f"retrain__{as_of}"
    window, config_path = str(run_dir / "evaluation_window.parquet"), str(run_dir / "config.yaml")
    from churnops.tracking import ModelIntegrityError

    with tampered(artifact_folder("2") / "MLmodel", lambda data: data + b"\n# edited\n"):
        with pytest.raises(ModelIntegrityError, match=f"{MODEL} version 2.*changed: MLmodel"):
            compare_on_fresh_window({"model_version": "2"}, window, config_path)
    comparison = compare_on_fresh_window({"model_version": "2"}, window, config_path)
    assert (comparison["champion_version"], comparison["challenger_version"]) == ("1", "2"), "intact, both load"
    assert alias_version(registry, "champion") == "1"
