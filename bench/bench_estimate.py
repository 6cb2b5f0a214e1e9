"""Cost of the label-free estimate (churnops.monitoring.estimate) on a day of N scored rows.

    .venv/bin/python bench/bench_estimate.py [--rows 1000000 10000000] [--repeats 3]

For each N, a ``predictions.parquet`` of N rows (id, score drawn from Beta(2, 5), model version)
is written to a temporary folder in row groups of 250,000 rows, as ``merge_shards`` writes a day's. Then,
in a fresh subprocess per run, with churnops and its libraries already imported:
``read_score_summary`` (the score column read ``monitoring.chunk_rows`` rows at a time into
the fixed score bins) and ``estimated_performance`` (ROC-AUC, the 200-draw band, precision,
recall and F1 at the threshold, the trust rule), timed each, and the process's peak RSS
before and after (``ru_maxrss``): the growth is what the estimate holds.

Target: well under 1 s at 1,000,000 rows, and peak memory that does not grow with N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from churnops.config import MonitoringConfig
from churnops.monitoring.estimate import estimated_performance, read_score_summary

monitoring = MonitoringConfig()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
summary = read_score_summary(sys.argv[1], 0.5, monitoring.chunk_rows)
read = time.perf_counter() - started
started = time.perf_counter()
result = estimated_performance(summary, 0.85, 0.02, monitoring)
estimate = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"read_s": read, "estimate_s": estimate, "rss_before_mib": before / 1024,
                  "rss_growth_mib": (after - before) / 1024, "estimated_roc_auc": result["estimated_roc_auc"]}))
"""


def write_predictions(path: Path, rows: int, chunk: int = 250_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    schema = pa.schema([("customerid", pa.string()), ("score", pa.float64()), ("model_version", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = pa.array([f"c{k}" for k in range(start, start + n)])
            writer.write_table(pa.table([ids, pa.array(rng.beta(2, 5, n)), pa.array(["1"] * n)], schema=schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| rows | read scores (s) | estimate + band (s) | peak RSS growth (MiB) | estimated ROC-AUC |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as folder:
        for rows in args.rows:
            path = Path(folder) / f"predictions-{rows}.parquet"
            write_predictions(path, rows)
            for _ in range(args.repeats):
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, str(path)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=os.environ,
                )
                m = json.loads(done.stdout.strip().splitlines()[-1])
                print(
                    f"| {rows:,} | {m['read_s']:.3f} | {m['estimate_s']:.3f} | {m['rss_growth_mib']:.0f} |"
                    f" {m['estimated_roc_auc']:.4f} |"
                )
    print(f"\nload average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
