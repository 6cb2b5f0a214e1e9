"""Scoring with a registered version: which version is @champion, loading it, and its scores.

Shared by monitoring (the day's batch) and retraining (champion and challenger on the same
fresh window). Within one ``run_monitoring`` call the steps share the model and the reference
split through :func:`shared_reads`; an Airflow task reads them itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from churnops.config import ChurnopsConfig
from churnops.data import SPLIT_COLUMN
from churnops.tracking import alias_version, configure_mlflow, load_registered_model, version_tags

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "SCORE_CHUNK_ROWS",
    "SCORE_COLUMN",
    "VERSION_COLUMN",
    "NoChampionError",
    "cached",
    "champion_version",
    "load_model",
    "positive_scores",
    "reference_frame",
    "shared_reads",
]


SCORE_COLUMN = "score"


VERSION_COLUMN = "model_version"


class NoChampionError(RuntimeError):
    """The registered model has no ``@champion`` to score with."""


# Within one run_monitoring call the steps share the reference split and the model (the day's
# batch is read once anyway, by the shards). Each step called on its own (an Airflow task)
# reads its inputs itself. The shared frames are never modified by the steps.
_RUN_CACHE: ContextVar[dict | None] = ContextVar("churnops_monitoring_run_cache", default=None)

_T = TypeVar("_T")


@contextmanager
def shared_reads() -> Iterator[dict]:
    """Share what :func:`cached` computes between the steps run inside the block.

    Yields:
        The block's cache (keyed as :func:`cached` keys it), dropped when the block ends.
    """
    cache: dict = {}
    token = _RUN_CACHE.set(cache)
    try:
        yield cache
    finally:
        _RUN_CACHE.reset(token)


def cached(key: tuple, compute: Callable[[], _T]) -> _T:
    """``compute()``, computed once per ``key`` inside :func:`shared_reads`; outside it, every time.

    Args:
        key: what identifies the value (a kind and the ids it depends on).
        compute: computes the value.

    Returns:
        The value.
    """
    cache = _RUN_CACHE.get()
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def champion_version(config: ChurnopsConfig) -> str:
    """The version ``@champion`` points at now.

    Raises:
        NoChampionError: the registered model has no ``@champion``.
    """
    configure_mlflow(config)
    version = alias_version(config.registry, config.registry.champion_alias)
    if version is None:
        raise NoChampionError(
            f"{config.registry.model_name} has no @{config.registry.champion_alias}: run churn_training first"
        )
    return version


def load_model(config: ChurnopsConfig, version: str) -> Any:
    """The exact registered version (not the alias), so an alias move mid-run cannot mix models.

    Loaded by :func:`churnops.tracking.load_registered_model`: its artifacts are checked against
    the digest recorded at registration first. Within :func:`shared_reads` the checked model is
    shared by registry settings and version: another version is checked when it is first loaded.

    Args:
        config: the registered model's name (and ``registry.allow_unverified_models``).
        version: the version to load.

    Returns:
        The version as an MLflow pyfunc model (shared within :func:`shared_reads`).

    Raises:
        churnops.tracking.ModelIntegrityError: the version's artifacts are not the ones registered.
    """
    registry = config.registry
    return cached(("model", registry, version), lambda: load_registered_model(registry, version))


SCORE_CHUNK_ROWS = 250_000
"""Rows per call of the model pipeline. Every step of the logged pipeline (fitted coercion,
derived features, imputation, scaling, encoding, estimator) scores a row from that row alone,
so chunks give the same scores while keeping the intermediate frames and matrices small:
less memory, and faster than one call on a million rows."""


def positive_scores(model: Any, frame: pd.DataFrame, config: ChurnopsConfig) -> np.ndarray:
    """The model's positive-class probability for each row, scored :data:`SCORE_CHUNK_ROWS` rows at a time.

    Args:
        model: an MLflow pyfunc model whose ``predict`` gives ``predict_proba``'s two columns.
        frame: rows with the feature columns (other columns are not passed to the model).
        config: the feature columns.

    Returns:
        One probability per row, in row order.
    """
    import numpy as np

    columns = config.dataset.feature_columns
    predict = _direct_predict(model, frame, columns) or (lambda chunk: model.predict(chunk[columns]))
    if len(frame) <= SCORE_CHUNK_ROWS:
        return np.asarray(predict(frame))[:, 1]
    return np.concatenate(
        [
            np.asarray(predict(frame.iloc[start : start + SCORE_CHUNK_ROWS]))[:, 1]
            for start in range(0, len(frame), SCORE_CHUNK_ROWS)
        ]
    )


def _direct_predict(model: Any, data: pd.DataFrame, columns: list[str]) -> Callable[[pd.DataFrame], Any] | None:
    """The pyfunc's own predict function, minus MLflow's schema check, when that check is a no-op.

    Some registered versions declare every input column as ``any`` (models logged with an input
    schema; :func:`churnops.modeling.models.model_signature` declares none). For such a
    signature MLflow's enforcement only checks that the columns are present and rebuilds the
    frame in signature order, calling a Python function on every cell (about 15 µs per row,
    more than the model itself). When the model is a scikit-learn pyfunc with only required
    ``any`` columns, no params schema, and its columns are among ``columns`` (what the caller
    would pass) which ``data`` all has, this returns ``pipeline.<predict_fn>`` applied to those
    columns in signature order: exactly what ``model.predict(data[columns])`` computes.
    Otherwise None: use ``model.predict``, which also names a missing column.
    """
    try:
        from mlflow.types.schema import AnyType, ColSpec

        metadata = model.metadata
        flavor = metadata.flavors["python_function"]
        schema = metadata.get_input_schema()
        if (
            flavor.get("loader_module") != "mlflow.sklearn"
            or schema is None
            or not schema.has_input_names()
            or metadata.get_params_schema() is not None
            or metadata._is_signature_from_type_hint()
            or metadata._is_type_hint_from_example()
        ):
            return None
        specs = schema.inputs
        if not all(isinstance(s, ColSpec) and isinstance(s.type, AnyType) and s.required for s in specs):
            return None
        names = [s.name for s in specs]
        if not set(names) <= set(columns) or not set(columns) <= set(data.columns):
            return None
        predict = getattr(model.get_raw_model(), flavor.get("predict_fn", "predict"))
    except Exception:  # not an MLflow pyfunc of that shape (e.g. a test double): the plain path
        return None
    return lambda frame: predict(frame[names])


def reference_frame(config: ChurnopsConfig, version: str) -> pd.DataFrame:
    """The training split of the snapshot the version was trained on (found through its tags).

    Args:
        config: the registered model's name.
        version: the version.

    Returns:
        The snapshot's training rows, indexed from 0 (shared within :func:`shared_reads`).

    Raises:
        FileNotFoundError: the version has no ``churnops.snapshot_path`` tag, or the file is gone.
    """
    import pandas as pd

    def read() -> pd.DataFrame:
        path = version_tags(config.registry, version).get("churnops.snapshot_path")
        if not path or not Path(path).is_file():
            raise FileNotFoundError(f"version {version} has no readable training snapshot (tag churnops.snapshot_path)")
        snapshot = pd.read_parquet(path)
        return snapshot[snapshot[SPLIT_COLUMN] == "train"].reset_index(drop=True)

    return cached(("reference", config.registry.model_name, version), read)
