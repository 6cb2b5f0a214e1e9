"""churnops.monitoring.scoring: scoring a day with a logged model, ``positive_scores`` against the pyfunc itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.config import ChurnopsConfig
from tests.helpers import toy_dataset

CONFIG = ChurnopsConfig.model_validate(
    {
        "dataset": toy_dataset(["x1"], ["grp"]),
        "training": {"params": {"lightgbm": {"n_estimators": 10, "min_child_samples": 5, "n_jobs": 1}}},
    }
)


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "x1": rng.normal(size=n).round(3).astype(str),
            "grp": rng.choice(["a", "b", "c"], size=n),
            "extra": 1,
        }
    )


@pytest.fixture
def logged(churnops_home):
    """The same fitted churnops pipeline logged twice: as churnops logs it now, and with the
    every-column-``any`` input schema of earlier versions. Returns (pipeline, {kind: pyfunc})."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from churnops.modeling.models import build_model, model_signature
    from churnops.tracking.runs import configure_mlflow

    train = rows(300, 0)
    pipeline = build_model("lightgbm", CONFIG).fit(
        train[CONFIG.dataset.feature_columns], (train["x1"].astype(float) > 0).astype(int)
    )
    current = model_signature(CONFIG, np.zeros((1, 2)))
    legacy = ModelSignature(
        inputs=Schema([ColSpec(AnyType(), c) for c in CONFIG.dataset.feature_columns]), outputs=current.outputs
    )
    experiment_id = configure_mlflow(CONFIG)
    models = {
        kind: logged_pyfunc(pipeline, signature, experiment_id)
        for kind, signature in (("current", current), ("legacy", legacy))
    }
    return pipeline, models


def logged_pyfunc(pipeline, signature, experiment_id: str | None = None):
    """``pipeline`` logged as churnops logs a model (with ``signature``), loaded back as its pyfunc."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            pyfunc_predict_fn="predict_proba",
            serialization_format="cloudpickle",
        )
    return mlflow.pyfunc.load_model(info.model_uri)


@pytest.mark.parametrize("kind", ["current", "legacy"])
def test_positive_scores_equal_the_pyfunc_in_chunks(logged, kind, monkeypatch):
    from churnops.monitoring import scoring

    pipeline, models = logged
    day = rows(1_000, 1)
    expected = pipeline.predict_proba(day[CONFIG.dataset.feature_columns])[:, 1]
    np.testing.assert_array_equal(np.asarray(models[kind].predict(day))[:, 1], expected)
    monkeypatch.setattr(scoring, "SCORE_CHUNK_ROWS", 300)  # 4 chunks, the last one short
    np.testing.assert_array_equal(scoring.positive_scores(models[kind], day, CONFIG), expected)


def test_the_legacy_schema_is_skipped_only_when_it_checks_nothing(logged):
    from churnops.monitoring.scoring import _direct_predict

    _, models = logged
    day = rows(10, 2)
    assert _direct_predict(models["legacy"], day, CONFIG.dataset.feature_columns) is not None
    assert _direct_predict(models["legacy"], day.drop(columns=["grp"]), CONFIG.dataset.feature_columns) is None
    assert _direct_predict(models["current"], day, CONFIG.dataset.feature_columns) is None  # nothing to skip


def test_a_missing_column_is_named_with_either_schema(logged):
    from churnops.monitoring.scoring import positive_scores

    _, models = logged
    day = rows(10, 3).drop(columns=["grp"])
    with pytest.raises(ValueError, match=r"input lacks columns \['grp'\]"):
        models["current"].predict(day)
    with pytest.raises(Exception, match="grp"):
        positive_scores(models["legacy"], day, CONFIG)


@pytest.mark.parametrize("kind", ["current", "legacy"])
def test_a_calibrated_model_scores_the_day_with_its_calibrated_probabilities(logged, kind):
    """Monitoring sees what serving serves: the calibrated model's probability, through either path."""
    from churnops.modeling import ScoreCalibrator, calibrated_model
    from churnops.monitoring.scoring import positive_scores

    pipeline, models = logged
    reference = rows(400, 4)
    calibrator = ScoreCalibrator("sigmoid").fit(
        pipeline.predict_proba(reference[CONFIG.dataset.feature_columns])[:, 1],
        (reference["x1"].astype(float) > 0.3).astype(int),
    )
    calibrated = calibrated_model(pipeline, calibrator)
    model = logged_pyfunc(calibrated, models[kind].metadata.signature)
    day = rows(1_000, 5)
    expected = calibrated.predict_proba(day[CONFIG.dataset.feature_columns])[:, 1]
    assert not np.array_equal(expected, pipeline.predict_proba(day[CONFIG.dataset.feature_columns])[:, 1])
    np.testing.assert_array_equal(positive_scores(model, day, CONFIG), expected)
