"""The integration tests' Airflow stack: one per module (:mod:`tests.airflow_stack`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.airflow_stack import AirflowStack, running_stack


@pytest.fixture(scope="module")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """LocalExecutor stack on a fresh home and DB (PostgreSQL when available)."""
    with running_stack(tmp_path_factory.mktemp("airflow-it")) as stack:
        yield stack
