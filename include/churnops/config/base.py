"""What every configuration section shares: the strict base model, the error, the model families."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from churnops.errors import ChurnopsInputError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The ``churnops`` package folder: shipped in every logged model's ``code_paths``."""
DEFAULT_CONFIG_PATH = PACKAGE_DIR.parent / "config" / "telco.yaml"
ModelFamily = Literal["logistic_regression", "random_forest", "xgboost", "lightgbm"]
MODEL_FAMILIES: tuple[ModelFamily, ...] = ("logistic_regression", "random_forest", "xgboost", "lightgbm")


class ConfigError(ChurnopsInputError):
    """The configuration file is missing, unreadable or invalid."""


class Strict(BaseModel):
    """A section: unknown keys are rejected, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
