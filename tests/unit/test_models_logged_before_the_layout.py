"""Models registered before the package took its layout keep loading and scoring the same.

``tests/fixtures/models-before-the-layout.tar.gz`` holds two models (logistic regression and
LightGBM) logged by ``churnops train`` when the library was one flat folder of modules (commit
b2032e8), each with its ``code/`` copy of that package, plus 25 raw rows and the probabilities
the models gave then. Every churnops process imports its own ``churnops`` before it loads a
model, so what the pickles name by reference must resolve in the package as it is now. Such
versions have no recorded artifact digest: registered in a store, they load through churnops'
checked loader only when allowed or adopted.
"""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from tests.helpers import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "models-before-the-layout.tar.gz"
FAMILIES = ["logistic_regression", "lightgbm"]

SCORE = """
import json, sys
import churnops.features  # imported first, as monitoring, retraining and serving do
import mlflow, pandas as pd
rows = pd.read_csv(sys.argv[2], dtype=str, keep_default_na=False)
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps({"features": churnops.features.__file__, "proba": model.predict(rows).tolist()}))
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("before")
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(folder, filter="data")
    return folder


def pickled_globals(path) -> set[str]:
    """``module.name`` of every global the pickle names by reference (each resolved in this process)."""
    found = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            found.add(f"{module}.{name}")
            return super().find_class(module, name)

    with path.open("rb") as handle:
        Recording(handle).load()
    return found


@pytest.mark.parametrize("family", FAMILIES)
def test_what_the_old_pickles_name_exists_in_the_package(logged, family):
    names = sorted(n for n in pickled_globals(logged / family / "model.pkl") if n.startswith("churnops."))
    assert names, "the fixture's pipeline refers to churnops' transformers by reference"
    assert {"churnops.features.RawInputCoercer", "churnops.features.CategoryEncoder"} <= set(names)
    for name in names:  # resolved already by the unpickler; the modules are the package's own
        assert importlib.import_module(name.rpartition(".")[0]).__file__.startswith(str(ROOT / "include"))


@pytest.mark.parametrize("family", FAMILIES)
def test_an_old_model_loads_with_the_current_package_and_scores_the_same(logged, family):
    done = subprocess.run(
        [sys.executable, "-c", SCORE, str(logged / family), str(logged / "rows.csv")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
    )
    scored = json.loads(done.stdout.strip().splitlines()[-1])
    assert scored["features"] == str(ROOT / "include" / "churnops" / "features.py")  # not the model's old copy
    expected = json.loads((logged / "expected.json").read_text())[family]
    np.testing.assert_allclose(scored["proba"], expected, rtol=0, atol=1e-12)


def test_an_old_registered_model_loads_through_the_checked_loader_once_allowed_or_adopted(logged, churnops_home):
    """Registered before churnops recorded artifact digests: refused by default, loaded (with a warning)
    under ``registry.allow_unverified_models``, and checked like any other once its digest is recorded."""
    import mlflow
    import pandas as pd

    from churnops.config import RegistryConfig, load_config
    from churnops.tracking import (
        ModelIntegrityError,
        configure_mlflow,
        load_registered_model,
        record_artifact_digest,
        register_version,
    )

    registry = RegistryConfig(model_name="model-before-the-layout")
    with mlflow.start_run(experiment_id=configure_mlflow(load_config())) as run:
        mlflow.log_artifacts(str(logged / "logistic_regression"), "model")
    version, _ = register_version(f"runs:/{run.info.run_id}/model", run.info.run_id, registry, {})
    rows = pd.read_csv(logged / "rows.csv", dtype=str, keep_default_na=False)
    expected = json.loads((logged / "expected.json").read_text())["logistic_regression"]

    with pytest.raises(ModelIntegrityError, match="no recorded artifact digest"):
        load_registered_model(registry, version)
    allowed = load_registered_model(registry.model_copy(update={"allow_unverified_models": True}), version)
    np.testing.assert_allclose(allowed.predict(rows), expected, rtol=0, atol=1e-12)
    record_artifact_digest(registry, version, origin="adopted")
    np.testing.assert_allclose(load_registered_model(registry, version).predict(rows), expected, rtol=0, atol=1e-12)
    assert not [p for p in sys.path if "churnops-model-" in p], "the checked copy's code/ is not left on sys.path"
