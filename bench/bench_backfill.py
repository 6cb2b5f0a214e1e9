"""A 60-day monitoring backfill under LocalExecutor on PostgreSQL: sequential, then 4 runs at a time.

    .venv/bin/python bench/bench_backfill.py [--days 60] [--rows-per-day 1000] [--max-active-runs 4]
        [--output bench/RESULTS_BACKFILL.md] [--json-out bench/backfill.json]

Method:

1. The integration tests' stack (``tests/airflow_stack.py``): api-server, scheduler,
   dag-processor, LocalExecutor with ``parallelism`` 4, an MLflow server, the metadata DB and
   MLflow store on PostgreSQL (SQLite if no server answers; the report says which).
2. ``churnops train`` (logistic regression → ``@champion``) and ``churnops simulate`` of the
   days (half stable, half drifting), 1,000 rows a day: one shard a day.
3. ``airflow backfill create --dag-id churn_monitoring --max-active-runs 1`` over the days
   (sequential), then the day outputs (predictions, reports, work files) are removed and the
   same days are backfilled again with ``--max-active-runs N --reprocess-behavior completed``.
   Each day's realized performance reads the predictions of days 7–36 days earlier, i.e. of
   earlier runs of the same backfill: ``wait_for_matured_days`` holds a day until those runs
   have ended, so running days side by side must not change any result.
4. Per day, the report, feature/prediction drift and performance JSON and a hash of the
   predictions are compared between the two backfills; every run must succeed; the task logs
   and the scheduler's log are searched for lock errors (deadlocks, lock timeouts,
   "database is locked"). Wall time: the first run's start to the last run's end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST = date(2026, 3, 1)
LOCK_ERRORS = re.compile(
    r"deadlock detected|could not obtain lock|lock timeout|LockNotAvailable|"
    r"database is locked|could not serialize access",
    re.IGNORECASE,
)


def parse(stamp: str | None) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else float("nan")


def run_id(day: date) -> str:
    return f"backfill__{day.isoformat()}T00:00:00+00:00"


def day_digest(home: Path, day: date) -> dict:
    import pandas as pd

    reports = home / "reports" / f"date={day}"
    files = {
        name: hashlib.sha256((reports / name).read_bytes()).hexdigest()[:16]
        for name in ("drift_report.json", "feature_drift.json", "prediction_drift.json", "performance.json")
    }
    predictions = pd.read_parquet(home / "predictions" / f"date={day}" / "predictions.parquet")
    rows = hashlib.sha256(pd.util.hash_pandas_object(predictions, index=False).to_numpy().tobytes()).hexdigest()[:16]
    report = json.loads((reports / "drift_report.json").read_text())
    return {
        "files": files,
        "predictions": rows,
        "rows": len(predictions),
        "decision": report["decision"],
        "n_labels": report["n_labels"],
        "realized_roc_auc": report["realized_roc_auc"],
    }


def backfill(stack, days: list[date], max_active_runs: int, reprocess: bool, timeout: float) -> dict:
    before = {day: (stack.dag_run("churn_monitoring", run_id(day)) or {}).get("queued_at") for day in days}
    tries_before = {
        (day, ti["task_id"], ti["map_index"]): ti["try_number"]
        for day in days
        if before[day]
        for ti in stack.task_instances("churn_monitoring", run_id(day))
    }
    command = [
        "airflow",
        "backfill",
        "create",
        "--dag-id",
        "churn_monitoring",
        "--from-date",
        days[0].isoformat(),
        "--to-date",
        days[-1].isoformat(),
        "--max-active-runs",
        str(max_active_runs),
    ]
    if reprocess:
        command += ["--reprocess-behavior", "completed"]
    started = time.monotonic()
    stack.run(*command)
    runs = {
        day: stack.wait_for_run("churn_monitoring", run_id(day), timeout=timeout, queued_after=before[day])
        for day in days
    }
    waited = time.monotonic() - started
    stack.wait_until_backfills_complete("churn_monitoring", timeout=120)
    starts = [parse(r["start_date"]) for r in runs.values()]
    ends = [parse(r["end_date"]) for r in runs.values()]
    instances = {day: stack.task_instances("churn_monitoring", run_id(day)) for day in days}
    # A reprocessed task starts at its previous try number + 1: more than that is a retry.
    tries = sum(
        ti["try_number"] - tries_before.get((day, ti["task_id"], ti["map_index"]), 0) > 1
        for day in days
        for ti in instances[day]
    )
    # Each poke that found earlier days still running logs a line (churn_monitoring.wait_for_matured_days).
    waits = [
        log.read_text(errors="replace").count("waiting for ")
        for day in days
        for log in (
            stack.home / "logs" / "dag_id=churn_monitoring" / f"run_id={run_id(day)}" / "task_id=wait_for_matured_days"
        ).glob("attempt=*.log")
    ]
    overlap = max(sum(1 for s, e in zip(starts, ends, strict=True) if s <= t < e) for t in starts)
    return {
        "max_active_runs": max_active_runs,
        "wall_s": max(ends) - min(starts),
        "waited_s": waited,
        "runs": len(runs),
        "succeeded": sum(r["state"] == "success" for r in runs.values()),
        "max_overlapping_runs": overlap,
        "tasks_retried": tries,
        "days_held_by_sensor": sum(w > 0 for w in waits),
        "most_pokes_waiting": max(waits, default=0),
        "digests": {day.isoformat(): day_digest(stack.churnops_home, day) for day in days},
    }


def remove_day_outputs(home: Path, days: list[date]) -> None:
    for day in days:
        for folder in ("predictions", "reports", "work/monitoring"):
            shutil.rmtree(home / folder / f"date={day}", ignore_errors=True)


def lock_errors(stack) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in [*(stack.home / "logs").rglob("*.log"), *stack.process_logs.glob("*.log")]:
        for match in LOCK_ERRORS.findall(path.read_text(errors="replace")):
            found[match.lower()] = found.get(match.lower(), 0) + 1
    return found


def markdown(payload: dict) -> str:
    machine = payload["machine"]
    lines = [
        "# Monitoring backfill benchmark",
        "",
        f"`{payload['command']}` on {machine['cores']} cores, {machine['memory_gib']:.0f} GiB, "
        f"{machine['platform']}; metadata DB and MLflow store on {payload['database']}, LocalExecutor "
        f"(parallelism 4).",
        "",
        f"{payload['days']} days of {payload['rows_per_day']:,} rows (half stable, half drifting) backfilled "
        "by `airflow backfill create --dag-id churn_monitoring`; each day's performance step reads the "
        f"predictions of the runs {payload['label_delay_days']}–{payload['label_delay_days'] + 29} days "
        "earlier.",
        "",
        "| --max-active-runs | runs succeeded | wall (s) | s per day | most runs at once | tasks retried | "
        "days held by `wait_for_matured_days` (most 10-s pokes waiting) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in payload["backfills"]:
        lines.append(
            f"| {m['max_active_runs']} | {m['succeeded']}/{m['runs']} | {m['wall_s']:.0f} | "
            f"{m['wall_s'] / m['runs']:.1f} | {m['max_overlapping_runs']} | {m['tasks_retried']} | "
            f"{m['days_held_by_sensor']} ({m['most_pokes_waiting']}) |"
        )
    sequential, concurrent = payload["backfills"]
    lines += [
        "",
        f"Speed-up: {sequential['wall_s'] / concurrent['wall_s']:.2f}×. Results identical to the "
        f"sequential backfill (per day: report, drift and performance JSON, predictions): "
        f"**{payload['identical']}** ({payload['identical_days']}/{payload['days']} days). "
        f"Days with realized ROC-AUC: {payload['days_with_labels']}. Lock errors in the task and "
        f"scheduler logs: **{sum(payload['lock_errors'].values())}** {payload['lock_errors'] or ''}.",
        "",
    ]
    return "\n".join(lines)


def recorded_command(args: argparse.Namespace) -> str:
    """The command that gives these results: the options that shape the run, not where it writes."""
    options = {
        "--days": (args.days, 60),
        "--rows-per-day": (args.rows_per_day, 1000),
        "--max-active-runs": (args.max_active_runs, 4),
        "--label-delay-days": (args.label_delay_days, 7),
    }
    given = [f"{flag} {value}" for flag, (value, default) in options.items() if value != default]
    return " ".join(["python bench/bench_backfill.py", *given])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--rows-per-day", type=int, default=1000)
    parser.add_argument("--max-active-runs", type=int, default=4)
    parser.add_argument(
        "--label-delay-days",
        type=int,
        default=7,
        help="monitoring.label_delay_days (1: each day reads the day before, so days run side by "
        "side must wait for each other)",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS_BACKFILL.md")
    parser.add_argument("--json-out", type=Path, default=ROOT / "bench" / "backfill.json")
    args = parser.parse_args()
    import psutil

    from tests.airflow_stack import running_stack

    days = [FIRST + timedelta(days=k) for k in range(args.days)]
    stable = args.days // 2
    root = Path(tempfile.mkdtemp(prefix="churnops-bench-backfill-"))
    # one shard a day
    monitoring = {"chunk_rows": 50_000, "shard_rows": 1_000_000, "label_delay_days": args.label_delay_days}
    with running_stack(root, monitoring=monitoring) as stack:
        stack.run("churnops", "train", "--json", timeout=900)
        stack.run(
            "churnops",
            "simulate",
            "--start",
            FIRST.isoformat(),
            "--days",
            str(stable),
            "--rows-per-day",
            str(args.rows_per_day),
            "--scenario",
            "stable",
            "--seed",
            "5",
        )
        drift = days[stable].isoformat()
        stack.run(
            "churnops",
            "simulate",
            "--start",
            drift,
            "--days",
            str(args.days - stable),
            "--rows-per-day",
            str(args.rows_per_day),
            "--scenario",
            "mixed",
            "--seed",
            "5",
            "--drift-start",
            drift,
            "--ramp-days",
            "5",
        )
        stack.unpause("churn_monitoring")
        sequential = backfill(stack, days, 1, reprocess=False, timeout=args.timeout)
        print(json.dumps({k: v for k, v in sequential.items() if k != "digests"}), flush=True)
        remove_day_outputs(stack.churnops_home, days)
        concurrent = backfill(stack, days, args.max_active_runs, reprocess=True, timeout=args.timeout)
        print(json.dumps({k: v for k, v in concurrent.items() if k != "digests"}), flush=True)
        database, errors = stack.database, lock_errors(stack)
    same = [d for d in sequential["digests"] if sequential["digests"][d] == concurrent["digests"][d]]
    payload = {
        "command": recorded_command(args),
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": psutil.virtual_memory().total / 2**30,
            "platform": platform.platform(),
        },
        "database": database,
        "days": args.days,
        "rows_per_day": args.rows_per_day,
        "label_delay_days": args.label_delay_days,
        "backfills": [sequential, concurrent],
        "identical": len(same) == args.days,
        "identical_days": len(same),
        "differing_days": sorted(set(sequential["digests"]) - set(same)),
        "days_with_labels": sum(1 for d in sequential["digests"].values() if d["n_labels"]),
        "lock_errors": errors,
    }
    args.json_out.write_text(json.dumps(payload, indent=2) + "\n")
    args.output.write_text(markdown(payload))
    print(markdown(payload))
    shutil.rmtree(root, ignore_errors=True)
    if not payload["identical"] or errors or concurrent["succeeded"] != args.days:
        sys.exit("the concurrent backfill differs from the sequential one, failed, or logged lock errors")


if __name__ == "__main__":
    main()
