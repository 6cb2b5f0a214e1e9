"""Benchmarks of the training loop; writes bench/RESULTS.md.

    .venv/bin/python bench/bench_training.py [--repeat N] [--families ...] [--cv-folds K]

* ``churnops train`` on Telco in a fresh CHURNOPS_HOME (a new SQLite MLflow store each
  time): wall time, peak RSS of the process, CV / holdout ROC-AUC, ECE.
  Target: all four families with 5-fold CV in <= 60 s on a 2-core machine.
* ``--table-rows N ...``: ``churnops train`` on a generated table of N rows (Telco-like rows
  drawn by ``churnops.devtools.simulate``, written as the three Parquet sources of the Telco config),
  all four families, 5-fold CV, once per size: wall time, peak RSS, CV / holdout ROC-AUC.
  Target: 1,000,000 rows in <= 10 min and <= 8 GiB (``training.cv_max_rows`` and
  ``training.forest_max_samples`` keep CV and forests flat in the table's size).
* DAG parse time: each file in dags/ parsed by a DagBag in a fresh interpreter that has already
  imported Airflow's models (as the DAG processor has), plus the heavy modules it loaded
  (``bench/dag_parse_probe.py``). Target: < 0.3 s per file, no heavy module.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def write_table(rows: int, folder: Path) -> Path:
    """A Telco-like table of ``rows`` rows as the Telco config's three sources (Parquet); its config."""
    from datetime import date

    import yaml

    from churnops.config import load_config
    from churnops.devtools.simulate import population, simulate_day

    config = load_config()
    ds = config.dataset
    batch, labels = simulate_day(
        population(config), config, date(2026, 1, 1), rows, "stable", seed=5, drift_start=date(2100, 1, 1)
    )
    batch[ds.target] = labels[ds.target].to_numpy()
    raw = yaml.safe_load((ROOT / "include" / "config" / "telco.yaml").read_text())
    for source in raw["dataset"]["sources"]:
        path = folder / f"{source['name']}.parquet"
        batch[[ds.id_column, *source["columns"]]].to_parquet(path, index=False)
        source["path"] = str(path)
    raw["dataset"]["name"] = f"telco{rows}"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def bench_train(families: list[str] | None, cv_folds: int | None, config: Path | None = None) -> dict:
    command = [str(BIN / "churnops"), "train", "--json"]
    if config:
        command += ["--config", str(config)]
    if families:
        command += ["--families", *families]
    if cv_folds:
        command += ["--cv-folds", str(cv_folds)]
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as home:
        env = {**os.environ, "CHURNOPS_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        started = time.perf_counter()
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            child = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr, cwd=ROOT)
            # wait4: this child's own peak RSS, not the maximum over every child so far.
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - started
            child.returncode = os.waitstatus_to_exitcode(status)
            stdout.seek(0), stderr.seek(0)
            out, err = stdout.read().decode(), stderr.read().decode()
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited with {child.returncode}:\n{err[-3000:]}")
    summary = json.loads(out)
    if config:
        command[command.index(str(config))] = "<table>/config.yaml"
    return {
        "command": " ".join(["churnops", *command[1:]]),
        "seconds": seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        **summary,
    }


def bench_parse(dag_file: Path, repeat: int) -> dict:
    results = []
    for _ in range(repeat):
        command = [sys.executable, str(PARSE_PROBE), str(dag_file)]
        out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    seconds = [r["seconds"] for r in results]
    return {
        "file": dag_file.name,
        "median_s": statistics.median(seconds),
        "max_s": max(seconds),
        "heavy": results[-1]["heavy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="training runs (and 2x parse runs) to time")
    parser.add_argument("--families", nargs="+")
    parser.add_argument("--cv-folds", type=int)
    parser.add_argument(
        "--table-rows",
        type=int,
        nargs="*",
        default=[100_000, 1_000_000],
        help="also train on generated tables of these sizes (none: skip)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()

    parses = [bench_parse(f, args.repeat * 2) for f in sorted((ROOT / "dags").glob("*.py"))]
    trains = [bench_train(args.families, args.cv_folds) for _ in range(args.repeat)]
    tables = []
    for rows in args.table_rows:
        with tempfile.TemporaryDirectory(prefix="churnops-bench-table-") as folder:
            started = time.perf_counter()
            config = write_table(rows, Path(folder))
            written = time.perf_counter() - started
            tables.append(
                {**bench_train(args.families, args.cv_folds, config), "table_rows": rows, "generate_s": written}
            )
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
        *(
            [
                "## Training on big tables (generated Telco-like rows, three Parquet sources)",
                "",
                "| command | table rows | merged rows | wall (s) | peak RSS (MiB) | best | CV ROC-AUC | "
                "holdout ROC-AUC | rows/s |",
                "|---|---:|---:|---:|---:|---|---:|---:|---:|",
                *[
                    f"| `{t['command']}` | {t['table_rows']:,} | {t['rows']:,} | {t['seconds']:.1f} | "
                    f"{t['peak_rss_mib']:.0f} | {t['best_model']} | {t['cv_roc_auc']:.4f} | {t['test_roc_auc']:.4f} | "
                    f"{t['rows'] / t['seconds']:,.0f} |"
                    for t in tables
                ],
                "",
                "Target: 1,000,000 rows in <= 600 s and <= 8 GiB peak RSS (CV on a stratified sample of "
                "`training.cv_max_rows` rows, forests drawing `training.forest_max_samples` rows per tree; the "
                "models are fit on every training row). The generated rows are resampled Telco customers with "
                "noise, so their ROC-AUC is not comparable to Telco's.",
                "",
            ]
            if tables
            else []
        ),
        "## DAG parse time (`DagBag` of the one file, fresh interpreter each run; `bench/dag_parse_probe.py`)",
        "",
        "| DAG file | runs | median (s) | max (s) | heavy modules imported |",
        "|---|---:|---:|---:|---|",
        *[
            f"| `dags/{p['file']}` | {args.repeat * 2} | {p['median_s']:.3f} | {p['max_s']:.3f} | "
            f"{', '.join(p['heavy']) or 'none'} |"
            for p in parses
        ],
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
