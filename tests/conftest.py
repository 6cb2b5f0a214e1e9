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
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
})
# A developer's own settings must not leak into tests.
for _name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CHURNOPS_CONFIG", "CHURNOPS_HOME"):
    os.environ.pop(_name, None)
os.environ["CHURNOPS_HOME"] = str(Path(tempfile.mkdtemp(prefix="churnops-test-home-")))


@pytest.fixture(scope="session", autouse=True)
def shipped_data_untouched():
    """Whatever the tests do, the shipped raw files end byte-identical."""
    before = sha256_tree(TELCO_DATA)
    yield
    assert sha256_tree(TELCO_DATA) == before, "a test or the code modified include/data/telco"
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def churnops_home(tmp_path, monkeypatch) -> Path:
    """A fresh CHURNOPS_HOME, hence a fresh embedded MLflow store, for one test."""
    home = tmp_path / "churnops-home"
    monkeypatch.setenv("CHURNOPS_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


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


@pytest.fixture(scope="session")
def airflow_db():
    """A freshly created Airflow metadata DB (SQLite) for tests that run DAGs."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME
