"""Fixtures shared by the tests of churnops.monitoring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from churnops.config import MonitoringConfig


@pytest.fixture
def monitoring() -> Callable[..., MonitoringConfig]:
    """A builder of monitoring settings: ``monitoring()`` gives the defaults, ``monitoring(seed=3)`` changes one.

    The defaults the tests rely on: p-value 0.05, effect size 0.1, drifted-feature share 0.3,
    min ROC-AUC 0.75, max ROC-AUC drop 0.05, 200 labels, samples of 50k rows.
    """
    defaults = MonitoringConfig().model_dump()

    def build(**changes: Any) -> MonitoringConfig:
        return MonitoringConfig(**{**defaults, **changes})

    return build
