"""Fixtures shared by the tests of churnops.data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from churnops.config import ChurnopsConfig


@pytest.fixture
def toy_config() -> Callable[..., ChurnopsConfig]:
    """A builder of a small config: id ``id``, target ``y``, numeric ``age``/``income``, categorical ``plan``/``flag``.

    ``toy_config(positive_label=1)`` changes the positive label; other keyword arguments
    change fields of the dataset section.
    """

    def build(positive_label: object = "yes", **dataset: Any) -> ChurnopsConfig:
        return ChurnopsConfig.model_validate(
            {
                "dataset": {
                    "name": "toy",
                    "id_column": "id",
                    "target": "y",
                    "positive_label": positive_label,
                    "sources": [{"name": "main", "path": "/nonexistent/main.csv"}],
                    "numeric_features": ["age", "income"],
                    "categorical_features": ["plan", "flag"],
                    **dataset,
                }
            }
        )

    return build
