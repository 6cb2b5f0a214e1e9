"""The prediction service in front of ``@champion`` (``churnops serve``).

- :mod:`~churnops.serving.app`: the FastAPI app (``POST /predict``, ``GET /health``,
  ``GET /model-info``, ``/docs``) and :func:`serve`, which runs it with uvicorn.
- :mod:`~churnops.serving.follow`: polls the registry and swaps to the version ``@champion``
  points at, atomically; a version that fails to load is refused and the old one keeps serving.
- :mod:`~churnops.serving.model`: one version loaded through
  :func:`churnops.tracking.load_registered_model` (digest checked), its threshold
  (:func:`churnops.tracking.version_threshold`), risk bands and reasons.
- :mod:`~churnops.serving.explain`: per-row contributions in raw feature names.
- :mod:`~churnops.serving.treeshap`: LightGBM's TreeSHAP tabulated per tree at load, used only
  once it reproduces ``pred_contrib``.
- :mod:`~churnops.serving.compiled`: the features step computed with NumPy from the fitted
  pipeline, used only once it reproduces the pipeline's output exactly.
- :mod:`~churnops.serving.inputs`: a request's rows (JSON rows, JSON columns or CSV) parsed and
  checked column by column (4xx for the caller's mistakes).
- :mod:`~churnops.serving.cells`: the typed JSON decoders and a number column's reading, shared by
  every body form.
- :mod:`~churnops.serving.requests_log`: served rows written under ``serving/date=D/``, as ``incoming/``.

The end of the import order: serving imports tracking, modeling, features, data and config;
only the command line imports serving.
"""

from churnops.serving.app import create_app, serve
from churnops.serving.explain import Explainer, build_explainer, top_reasons
from churnops.serving.follow import ChampionFollower
from churnops.serving.inputs import BadRequest, check_columns, check_rows, rows_from_csv, rows_from_json
from churnops.serving.model import ServedModel, load_served_model
from churnops.serving.requests_log import RequestLog

__all__ = [
    "BadRequest",
    "ChampionFollower",
    "Explainer",
    "RequestLog",
    "ServedModel",
    "build_explainer",
    "check_columns",
    "check_rows",
    "create_app",
    "load_served_model",
    "rows_from_csv",
    "rows_from_json",
    "serve",
    "top_reasons",
]
