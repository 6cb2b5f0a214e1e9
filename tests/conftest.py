"""Test-wide set-up: a throwaway Airflow home and metadata DB, fresh churnops/MLflow stores.

Airflow reads its configuration when first imported, so the environment is set here,
before any test module imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import ROOT, TELCO_CONFIG, TELCO_DATA, sha256_tree

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="churnops-test-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
    }
)
# A developer's own settings must not leak into tests.
for _name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CHURNOPS_CONFIG", "CHURNOPS_HOME", "CHURNOPS_STATE"):
    os.environ.pop(_name, None)
os.environ["CHURNOPS_HOME"] = str(Path(tempfile.mkdtemp(prefix="churnops-test-home-")))
# The Airflow configured above is there for the DAG tests; the CLI's own tests keep their promotion
# state in a file unless they choose the Airflow store (tests/e2e/test_cli_state.py does).
os.environ["CHURNOPS_STATE"] = "file"


@pytest.fixture(scope="session", autouse=True)
def shipped_data_untouched():
    """Whatever the tests do, the shipped raw files end byte-identical."""
    before = sha256_tree(TELCO_DATA)
    yield
    assert sha256_tree(TELCO_DATA) == before, "a test or the code modified include/data/telco"
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory) -> Path:
    """An embedded MLflow store (SQLite) migrated once: creating one costs ~3 s, copying it nothing."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def churnops_home(tmp_path, monkeypatch, empty_mlflow_store) -> Path:
    """A fresh CHURNOPS_HOME, hence a fresh (empty, already migrated) embedded MLflow store, for one test."""
    home = tmp_path / "churnops-home"
    home.mkdir()
    shutil.copyfile(empty_mlflow_store, home / "mlflow.db")
    monkeypatch.setenv("CHURNOPS_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture(autouse=True)
def no_mlflow_uri_leak():
    """``mlflow.set_tracking_uri()`` exports MLFLOW_TRACKING_URI: a test that calls it must not point
    the tests after it (which churnops would take for the user's choice) at its store."""
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def telco_copy(tmp_path) -> Path:
    """A config pointing at a private copy of the Telco sources, safe to break."""
    import yaml

    data = tmp_path / "data"
    shutil.copytree(TELCO_DATA, data)
    raw = yaml.safe_load(TELCO_CONFIG.read_text())
    for source in raw["dataset"]["sources"]:
        source["path"] = str(data / Path(source["path"]).name)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# xdist hands each worker whole modules in collection order: the longest first, so that none is
# left running alone at the end.
LONGEST_FIRST = (
    "integration/test_scheduler_loop.py",
    "integration/test_faults_under_scheduler.py",
    "integration/test_demo.py",
    "integration/test_celery_executor.py",
    "bench/test_bench_smoke.py",
    "e2e/test_loop.py",
    "e2e/test_churn_training_dag.py",
    "e2e/test_cli.py",
    "e2e/test_monitoring_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path)).as_posix()
        return next((i for i, suffix in enumerate(LONGEST_FIRST) if path.endswith(suffix)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep pytest's order


@pytest.fixture(scope="session")
def airflow_db():
    """A freshly created Airflow metadata DB (SQLite) for tests that run DAGs."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME
