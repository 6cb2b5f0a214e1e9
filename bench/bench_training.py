"""Benchmarks of the training loop; writes bench/RESULTS.md.

    .venv/bin/python bench/bench_training.py [--repeat N] [--families ...] [--cv-folds K]

* ``churnops train`` on Telco in a fresh CHURNOPS_HOME (a new SQLite MLflow store each
  time): wall time, peak RSS of the process, CV / holdout ROC-AUC, ECE.
  Target: all four families with 5-fold CV in <= 60 s on a 2-core machine.
* DAG parse time: each file in dags/ parsed by a DagBag in a fresh interpreter that has already
  imported Airflow's models (as the DAG processor has), plus the heavy modules it loaded
  (``bench/dag_parse_probe.py``). Target: < 0.3 s per file, no heavy module.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PARSE_PROBE = ROOT / "bench" / "dag_parse_probe.py"


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}, {platform.machine()}"


def bench_train(families: list[str] | None, cv_folds: int | None) -> dict:
    command = [str(BIN / "churnops"), "train", "--json"]
    if families:
        command += ["--families", *families]
    if cv_folds:
        command += ["--cv-folds", str(cv_folds)]
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as home:
        env = {**os.environ, "CHURNOPS_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads(out.stdout)
    return {"command": " ".join(["churnops", *command[1:]]), "seconds": seconds,
            "peak_rss_mib": max(peak_kib, before) / 1024, **summary}


def bench_parse(dag_file: Path, repeat: int) -> dict:
    results = []
    for _ in range(repeat):
        command = [sys.executable, str(PARSE_PROBE), str(dag_file)]
        out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    seconds = [r["seconds"] for r in results]
    return {"file": dag_file.name, "median_s": statistics.median(seconds), "max_s": max(seconds),
            "heavy": results[-1]["heavy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="training runs (and 2x parse runs) to time")
    parser.add_argument("--families", nargs="+")
    parser.add_argument("--cv-folds", type=int)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()

    parses = [bench_parse(f, args.repeat * 2) for f in sorted((ROOT / "dags").glob("*.py"))]
    trains = [bench_train(args.families, args.cv_folds) for _ in range(args.repeat)]
    wall = [t["seconds"] for t in trains]
    last = trains[-1]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}. Command: `{Path(sys.executable).name} bench/bench_training.py "
        f"{' '.join(sys.argv[1:])}`.".replace(" `.", "`."),
        "",
        "## Training (`churnops train`, fresh SQLite MLflow store per run)",
        "",
        "| command | rows | runs | wall median (s) | wall min–max (s) | peak RSS (MiB) | best | CV ROC-AUC | "
        "holdout ROC-AUC | holdout ECE |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        f"| `{last['command']}` | {last['rows']:,} | {len(trains)} | {statistics.median(wall):.1f} | "
        f"{min(wall):.1f}–{max(wall):.1f} | {max(t['peak_rss_mib'] for t in trains):.0f} | {last['best_model']} | "
        f"{last['cv_roc_auc']:.4f} | {last['test_roc_auc']:.4f} | {last['test_ece']:.4f} |",
        "",
        "Targets: <= 60 s for all four families with 5-fold CV; champion CV ROC-AUC >= 0.845.",
        "",
        "## DAG parse time (`DagBag` of the one file, fresh interpreter each run; `bench/dag_parse_probe.py`)",
        "",
        "| DAG file | runs | median (s) | max (s) | heavy modules imported |",
        "|---|---:|---:|---:|---|",
        *[f"| `dags/{p['file']}` | {args.repeat * 2} | {p['median_s']:.3f} | {p['max_s']:.3f} | "
          f"{', '.join(p['heavy']) or 'none'} |" for p in parses],
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
