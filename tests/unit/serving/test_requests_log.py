"""Served rows written per day under serving/, typed and laid out as incoming/."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from churnops.config import load_config
from churnops.serving import RequestLog
from tests.helpers import TELCO_CONFIG


def config_with(**serving):
    config = load_config(TELCO_CONFIG)
    return config.model_copy(update={"serving": config.serving.model_copy(update=serving)})


def frame(ids, rows: int = 0) -> pd.DataFrame:
    config = load_config(TELCO_CONFIG)
    row = dict.fromkeys(config.dataset.categorical_features, "Yes") | {
        "tenure": 3,
        "monthlycharges": "20.5",
        "totalcharges": " ",
    }
    table = pd.DataFrame([row] * (len(ids) if ids is not None else rows))
    if ids is not None:
        table.insert(0, "customerid", ids)
    return table


def files(home):
    return sorted((home / "serving" / f"date={datetime.now(UTC).date().isoformat()}").glob("part-*.parquet"))


def test_rows_are_flushed_by_count_and_on_close_typed_as_a_batch(churnops_home):
    config = config_with(log_flush_rows=3, log_flush_seconds=3600)
    columns = config.dataset.feature_columns
    log = RequestLog(config)
    log.add(frame(["a", "b"]), columns)
    assert files(churnops_home) == []
    log.add(frame(["c", "d"]), columns)
    assert len(files(churnops_home)) == 1, "4 buffered rows >= log_flush_rows"
    log.add(frame(["e"]), columns)
    log.close()
    written = pd.concat([pd.read_parquet(f) for f in files(churnops_home)], ignore_index=True)
    assert list(written.columns) == ["customerid", *columns]
    assert sorted(written["customerid"]) == ["a", "b", "c", "d", "e"]
    assert written["tenure"].dtype == "float64" and written["totalcharges"].isna().all()
    assert written["monthlycharges"].tolist() == [20.5] * 5


def test_rows_without_ids_are_logged_with_a_null_id(churnops_home):
    config = config_with()
    log = RequestLog(config)
    log.add(frame(None, rows=2), config.dataset.feature_columns)
    log.close()
    (written,) = [pd.read_parquet(f) for f in files(churnops_home)]
    assert written["customerid"].isna().all() and len(written) == 2


def test_old_rows_are_flushed_by_age(churnops_home):
    import time

    config = config_with(log_flush_seconds=0.2)
    log = RequestLog(config)
    log.add(frame(["x"]), config.dataset.feature_columns)
    deadline = time.monotonic() + 10
    while not files(churnops_home) and time.monotonic() < deadline:
        time.sleep(0.05)
    log.close()
    assert len(files(churnops_home)) == 1


@pytest.mark.parametrize(
    ("serving", "message"),
    [
        ({"risk_levels": ["low", "high"], "risk_cut_points": [0.3, 0.6]}, "one band more"),
        ({"risk_cut_points": [0.6, 0.3]}, "increase strictly"),
        ({"risk_cut_points": [0.0, 0.5]}, "within"),
    ],
)
def test_risk_bands_are_checked(serving, message):
    from churnops.config import ChurnopsConfig

    raw = load_config(TELCO_CONFIG).model_dump(mode="json")
    raw["serving"].update(serving)
    with pytest.raises(ValueError, match=message):
        ChurnopsConfig.model_validate(raw)
