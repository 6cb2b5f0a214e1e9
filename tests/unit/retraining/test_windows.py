"""churnops.retraining.windows: the labelled rows a retraining run learns from and is judged on."""

from __future__ import annotations

from datetime import date

import pandas as pd

from churnops.config import load_config
from churnops.data import partition, write_parquet
from churnops.devtools import write_days
from churnops.retraining.windows import _labelled_days

DAY = date(2026, 3, 2)


def test_a_served_day_trains_each_labelled_customer_once_as_first_served(churnops_home):
    """Served rows (monitoring.batch_folder: serving) may repeat a customer or lack an id: the day is
    accepted, and each labelled customer is one row, the first one served that day (the one
    realized performance judges)."""
    config = load_config()
    config = config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"batch_folder": "serving"})})
    write_days(config, churnops_home, DAY, 1, rows_per_day=300)
    served = partition("serving", DAY)
    served.parent.mkdir(parents=True)
    partition("incoming", DAY).rename(served)
    first = pd.read_parquet(served / "batch.parquet")
    again = first.iloc[:10].assign(tenure=1.0)  # the same customers, served again later with other inputs
    write_parquet(again, served / "part-2.parquet")
    write_parquet(first.iloc[10:15].assign(customerid=None), served / "part-3.parquet")

    rows = _labelled_days(config, [DAY])

    assert len(rows) == 300 and rows["customerid"].is_unique
    by_id = rows.set_index("customerid")
    assert (first["tenure"].iloc[:10] != 1).any()
    assert (by_id.loc[first["customerid"], "tenure"] == first["tenure"].to_numpy()).all(), "as first served"
