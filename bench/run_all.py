"""Every benchmark in one command; writes bench/RESULTS.md, bench/RESULTS_MONITORING.md and bench/scaling.png.

    .venv/bin/python bench/run_all.py [--rows 100000 1000000 10000000] [--out-dir bench] [--smoke]

1. ``bench_training.py``: ``churnops train`` (all families, 5-fold CV, 3 runs), training on
   generated 100,000- and 1,000,000-row tables, and the parse time of every DAG file (``RESULTS.md``).
2. ``bench_monitoring.py``: one monitored day per ``--rows`` size (LightGBM champion) and the
   scoring throughput of every family's registered pyfunc (``RESULTS_MONITORING.md``, raw
   figures in ``monitoring.json``).
3. ``bench_sharded.py``: the same 10,000,000-row day monitored by ``churn_monitoring`` under a
   real Airflow with the CeleryExecutor, with 1 and then 2 workers (``RESULTS_SHARDED.md``,
   ``sharded.json``): the speed-up and a check that the results are equal.
4. ``bench_backfill.py`` (full runs only): a 60-day ``churn_monitoring`` backfill under
   LocalExecutor on PostgreSQL, sequential and then 4 runs at a time (``RESULTS_BACKFILL.md``,
   ``backfill.json``): wall times, identical results, no lock errors. ~30 min; the fault tests
   (``tests/integration/test_faults_under_scheduler.py``) run a 4-day backfill in CI instead.
5. ``bench_serving.py``: ``churnops serve`` with a LightGBM champion over HTTP: one-row latency,
   10,000-row throughput without reasons (JSON rows and JSON columns) and with them, 50 concurrent clients for 20 s
   (``RESULTS_SERVING.md``, ``serving.json``).
6. A scaling plot of the monitored days: wall time and peak RSS against rows (``scaling.png``),
   linked from a section appended to ``RESULTS.md`` with the sharded and backfill figures.

``--smoke`` runs the training, monitoring and serving scripts at toy sizes (one family, 2 folds, 2,000-
and 5,000-row days) into ``--out-dir``: what CI runs (``tests/bench/test_bench_smoke.py``) so
they keep working. The Airflow benchmarks (sharded, backfill) start a whole stack each; CI runs
the same paths as tests instead (``tests/integration/test_celery_executor.py``,
``test_faults_under_scheduler.py``). The big sizes run by hand; their figures go in the
results files and the README.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def in_repo(argument: str) -> str:
    """``argument`` relative to the repository when it is a path inside it, else unchanged."""
    path = Path(argument)
    return str(path.relative_to(ROOT)) if path.is_absolute() and path.is_relative_to(ROOT) else argument


def run(script: str, *arguments: str, may_skip: bool = False) -> bool:
    """Run a benchmark script; False when it skipped itself (status 3: a service it needs is absent)."""
    # Paths inside the repository are passed relative to it (the scripts run from its root), so the
    # command each result file records names no folder of this machine.
    arguments = tuple(in_repo(argument) for argument in arguments)
    command = [sys.executable, str(HERE / script), *arguments]
    print("==>", " ".join(command[1:]), flush=True)
    done = subprocess.run(command, cwd=ROOT)
    if may_skip and done.returncode == 3:
        return False
    done.check_returncode()
    return True


def scaling_plot(results: dict, path: Path) -> None:
    """Wall time and peak RSS of one monitored day against its rows (log-log), with the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = sorted(results["monitoring"], key=lambda m: m["rows"])
    rows = [m["rows"] for m in days]
    fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(10, 4))
    time_ax.loglog(rows, [m["wall_s"] for m in days], "o-", label="one day, end to end")
    time_ax.loglog(rows, [m["steps"]["score_batch"] for m in days], "s--", label="score step")
    time_ax.scatter([1_000_000, 10_000_000], [30, 300], marker="x", color="red", label="targets (30 s, 5 min)")
    time_ax.set(xlabel="rows in the day", ylabel="seconds", title="Monitoring time")
    memory_ax.semilogx(rows, [m["run_peak_rss_mib"] / 1024 for m in days], "o-", label="peak RSS in the run")
    memory_ax.axhline(3, color="red", linestyle=":", label="target (3 GiB)")
    memory_ax.set(xlabel="rows in the day", ylabel="GiB", title="Monitoring memory", ylim=(0, None))
    for ax in (time_ax, memory_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def scaling_section(results: dict, plot: Path) -> str:
    lines = [
        "## Monitoring and scoring (`bench/bench_monitoring.py`)",
        "",
        f"Details in `{plot.parent.name}/RESULTS_MONITORING.md`; the curve: ![scaling]({plot.name})",
        "",
        "| rows | wall (s) | peak RSS in the run (MiB) | rows/s |",
        "|---:|---:|---:|---:|",
    ]
    for m in sorted(results["monitoring"], key=lambda m: m["rows"]):
        lines.append(
            f"| {m['rows']:,} | {m['wall_s']:.1f} | {m['run_peak_rss_mib']:.0f} | {m['rows'] / m['wall_s']:,.0f} |"
        )
    lines += ["", "| family | pyfunc rows/s |", "|---|---:|"]
    lines += [f"| {s['family']} | {s['rows'] / s['predict_s']:,.0f} |" for s in results["scoring"]]
    return "\n".join(lines) + "\n"


def sharded_section(payload: dict) -> str:
    runs = payload["runs"]
    lines = [
        "## Sharded monitoring under Airflow (`bench/bench_sharded.py`)",
        "",
        f"One {payload['rows']:,}-row day, {len(runs[0]['shards'])} shards, CeleryExecutor; details in "
        "`RESULTS_SHARDED.md`.",
        "",
        "| Celery workers | run wall (s) | plan→merge (s) | peak task RSS (MiB) |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {m['workers']} | {m['run_wall_s']:.1f} | {m['sharded_s']:.1f} | {m['peak_task_rss_mib']:.0f} |"
        for m in runs
    ]
    lines += ["", f"Results equal across worker counts: **{payload['equal_results']}**."]
    return "\n".join(lines) + "\n"


def backfill_section(payload: dict) -> str:
    sequential, concurrent = payload["backfills"]
    return (
        "\n".join(
            [
                "## Monitoring backfill under Airflow (`bench/bench_backfill.py`)",
                "",
                f"{payload['days']} days, LocalExecutor on {payload['database']}; details in `RESULTS_BACKFILL.md`.",
                "",
                "| --max-active-runs | runs succeeded | wall (s) |",
                "|---:|---:|---:|",
                *[
                    f"| {m['max_active_runs']} | {m['succeeded']}/{m['runs']} | {m['wall_s']:.0f} |"
                    for m in (sequential, concurrent)
                ],
                "",
                f"Results identical: **{payload['identical']}**; lock errors: {sum(payload['lock_errors'].values())}.",
            ]
        )
        + "\n"
    )


def serving_section(results: dict) -> str:
    single, concurrent = results["single"], results["concurrent"]
    lines = [
        "## Serving (`bench/bench_serving.py`)",
        "",
        f"`churnops serve`, {results['family']} champion; details in `RESULTS_SERVING.md`.",
        "",
        "| measure | result |",
        "|---|---:|",
        f"| one row, reasons on: p50 / p99 | {single['p50_ms']:.1f} ms / {single['p99_ms']:.1f} ms |",
        *[
            f"| {b['rows']:,} rows as JSON {b.get('form', 'rows')}, {'with' if b['explain'] else 'without'} reasons | "
            f"{b['rows_per_s']:,.0f} rows/s |"
            for b in results["big"]
        ],
        f"| {concurrent['clients']} clients for {concurrent['seconds']:.0f} s: errors, p99 | "
        f"{concurrent['errors']}, {concurrent['p99_ms']:.1f} ms |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--smoke", action="store_true", help="toy sizes, to check that every script still runs")
    args = parser.parse_args()
    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    training = ["--output", str(out / "RESULTS.md")]
    monitoring = [
        "--rows",
        *map(str, args.rows),
        "--output",
        str(out / "RESULTS_MONITORING.md"),
        "--json-out",
        str(out / "monitoring.json"),
    ]
    if args.smoke:
        training += ["--repeat", "1", "--families", "logistic_regression", "--cv-folds", "2", "--table-rows", "3000"]
        monitoring = [
            "--rows",
            "2000",
            "5000",
            "--families",
            "logistic_regression",
            "--champion",
            "logistic_regression",
            "--label-days",
            "1",
            "--score-rows",
            "1000",
            *monitoring[-4:],
        ]
    serving = ["--output", str(out / "RESULTS_SERVING.md"), "--json-out", str(out / "serving.json")]
    if args.smoke:
        serving += ["--family", "logistic_regression", "--single", "20", "--big-rows", "500", "--big-repeat", "1"]
        serving += ["--clients", "5", "--seconds", "2"]
    sharded = ["--output", str(out / "RESULTS_SHARDED.md"), "--json-out", str(out / "sharded.json")]
    run("bench_training.py", *training)
    run("bench_monitoring.py", *monitoring)
    run("bench_serving.py", *serving)
    sharded_ran = not args.smoke and run("bench_sharded.py", *sharded, may_skip=True)
    if not args.smoke:
        run("bench_backfill.py", "--output", str(out / "RESULTS_BACKFILL.md"), "--json-out", str(out / "backfill.json"))
    results = json.loads((out / "monitoring.json").read_text())
    plot = out / "scaling.png"
    scaling_plot(results, plot)
    summary = out / "RESULTS.md"
    summary.write_text(
        summary.read_text().rstrip("\n")
        + "\n\n"
        + scaling_section(results, plot)
        + "\n"
        + serving_section(json.loads((out / "serving.json").read_text()))
        + "\n"
        + (
            sharded_section(json.loads((out / "sharded.json").read_text()))
            if sharded_ran
            else "## Sharded monitoring under Airflow\n\nSkipped: "
            + ("not run by --smoke.\n" if args.smoke else "no Redis for the CeleryExecutor.\n")
        )
        + (
            "\n" + backfill_section(json.loads((out / "backfill.json").read_text()))
            if not args.smoke and (out / "backfill.json").is_file()
            else ""
        )
    )
    print(f"wrote {summary}, {out / 'RESULTS_MONITORING.md'}, {out / 'RESULTS_SERVING.md'}, {plot}")


if __name__ == "__main__":
    main()
