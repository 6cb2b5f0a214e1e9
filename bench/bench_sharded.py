"""The sharded monitoring path under a real Airflow: one big day with 1, then 2 Celery workers.

    .venv/bin/python bench/bench_sharded.py [--rows 10000000] [--workers 1 2] [--shard-rows 2500000]
        [--chunk-rows 250000] [--output bench/RESULTS_SHARDED.md] [--json-out bench/sharded.json]

Method:

1. The integration tests' stack (``tests/airflow_stack.py``): api-server, scheduler,
   dag-processor, an MLflow server, the CeleryExecutor on the local Redis (a queue of its own),
   PostgreSQL for the metadata DB when it answers; no Celery worker yet.
2. ``churnops train`` (logistic regression, 2 folds → ``@champion``) and
   ``churnops simulate --rows-per-day <rows>`` for one day, through the stack's environment.
3. For each ``--workers`` count N: start N Celery workers of concurrency 1 (one task at a time
   each, as one worker per machine would), wait until each logs that it is ready, run
   ``churn_monitoring`` for the day (the first count triggers it, later ones clear the same
   run), wait for it, stop the workers. The figures come
   from Airflow's own task instances: the run's wall time, the span from ``plan_shards``'s
   start to ``merge_shards``'s end (the sharded part), each shard's duration and host.
   A sampler records the peak RSS of any one task process and of all the workers' processes.
4. The results must not depend on N: the day's report (minus paths), its feature, prediction
   and performance JSON and a hash of the predictions are compared across the counts.

Needs Redis at 127.0.0.1:6379 (else it exits with status 3 and says why) and the Airflow, MLflow
and churnops executables of this venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAY = "2026-06-01"
RUN_ID = f"bench_sharded__{DAY}"
NO_REDIS = 3
"""Exit status when Redis is absent (``run_all.py`` then leaves the sharded figures out)."""


class PeakRss:
    """Polls the RSS of every process under the given roots: the largest single process and the sum."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.single = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        import psutil

        while not self._stop.wait(0.25):
            sizes = []
            for pid in list(self.roots):
                try:
                    root = psutil.Process(pid)
                    for process in [root, *root.children(recursive=True)]:
                        sizes.append(process.memory_info().rss)
                except psutil.Error:
                    continue
            if sizes:
                self.single, self.total = max(self.single, max(sizes)), max(self.total, sum(sizes))


def parse(stamp: str | None) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else float("nan")


def wait_until_ready(stack, names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        logs = [(stack.process_logs / f"{name}.log").read_text(errors="replace") for name in names]
        if all(" ready." in log for log in logs):  # each worker logs to a file of its own
            return
        time.sleep(0.5)
    raise RuntimeError(f"Celery workers {names} not ready after {timeout:.0f} s")


def result_digest(home: Path) -> dict:
    """What the day's monitoring produced, without paths and timings: must not depend on the workers."""
    import pandas as pd

    reports = home / "reports" / f"date={DAY}"
    report = json.loads((reports / "drift_report.json").read_text())
    kept = {k: v for k, v in report.items() if k not in {"details", "shards"}}
    files = {
        name: hashlib.sha256((reports / name).read_bytes()).hexdigest()[:16]
        for name in ("feature_drift.json", "prediction_drift.json", "performance.json")
    }
    predictions = pd.read_parquet(home / "predictions" / f"date={DAY}" / "predictions.parquet")
    rows_hash = hashlib.sha256(pd.util.hash_pandas_object(predictions, index=False).to_numpy().tobytes())
    return {"report": kept, "files": files, "predictions": rows_hash.hexdigest()[:16], "rows": len(predictions)}


def measure(stack, workers: int, first: bool, timeout: float) -> dict:
    names = [f"celery-worker-bench-{workers}-{k}" for k in range(workers)]
    with PeakRss() as peak:
        for name in names:
            stack.start_celery_worker(name, concurrency=1)
            peak.roots.append(stack.processes[name].pid)
        wait_until_ready(stack, names)  # a worker's start-up (imports, pre-imports) is not the run's time
        try:
            if first:
                stack.trigger("churn_monitoring", RUN_ID, logical_date=f"{DAY}T00:00:00Z")
                stack.wait_for_run("churn_monitoring", RUN_ID, timeout=timeout)
            else:
                queued = stack.dag_run("churn_monitoring", RUN_ID)["queued_at"]
                stack.api("POST", f"/dags/churn_monitoring/dagRuns/{RUN_ID}/clear", json={"dry_run": False})
                stack.wait_for_run("churn_monitoring", RUN_ID, timeout=timeout, queued_after=queued)
        finally:
            for name in names:
                stack.stop_process(name)
    # Which worker ran which shard: each worker logs the task instances it executes.
    spread = {}
    for name in names:
        text = (stack.process_logs / f"{name}.log").read_text(errors="replace")
        pattern = rf"run_id={re.escape(RUN_ID)}/task_id=score_shard/map_index=(\d+)/"
        spread[name] = sorted({int(index) for index in re.findall(pattern, text)})
    run = stack.dag_run("churn_monitoring", RUN_ID)
    instances = stack.task_instances("churn_monitoring", RUN_ID)
    by_task: dict[str, list[dict]] = {}
    for ti in instances:
        by_task.setdefault(ti["task_id"], []).append(ti)
    shards = sorted(by_task["score_shard"], key=lambda ti: ti["map_index"])
    sharded_start = parse(by_task["plan_shards"][0]["start_date"])
    sharded_end = parse(by_task["merge_shards"][0]["end_date"])
    return {
        "workers": workers,
        "run_wall_s": parse(run["end_date"]) - parse(run["start_date"]),
        "sharded_s": sharded_end - sharded_start,
        "tasks_s": {task: round(max(ti["duration"] or 0 for ti in tis), 1) for task, tis in by_task.items()},
        "shards": [
            {
                "map_index": ti["map_index"],
                "duration_s": ti["duration"],
                "queued_s": parse(ti["queued_when"]) - sharded_start if ti.get("queued_when") else None,
                "start_s": parse(ti["start_date"]) - sharded_start,
                "end_s": parse(ti["end_date"]) - sharded_start,
            }
            for ti in shards
        ],
        "timeline_s": {
            task: [
                round(parse(tis[0]["start_date"]) - parse(run["start_date"]), 1),
                round(parse(tis[0]["end_date"]) - parse(run["start_date"]), 1),
            ]
            for task, tis in by_task.items()
            if task != "score_shard" and tis[0]["start_date"]
        },
        "shards_by_worker": spread,
        "peak_task_rss_mib": peak.single / 2**20,
        "peak_workers_rss_mib": peak.total / 2**20,
        "result": result_digest(stack.churnops_home),
    }


def markdown(payload: dict) -> str:
    machine = payload["machine"]
    lines = [
        "# Sharded monitoring benchmark",
        "",
        f"`{payload['command']}` on {machine['cores']} cores, {machine['memory_gib']:.0f} GiB, "
        f"{machine['platform']}; metadata DB {payload['database']}, CeleryExecutor on Redis.",
        "",
        f"One day of {payload['rows']:,} rows, `chunk_rows` {payload['chunk_rows']:,}, `shard_rows` "
        f"{payload['shard_rows']:,} → {len(payload['runs'][0]['shards'])} mapped `score_shard` tasks. "
        "Each Celery worker runs one task at a time. Times from Airflow's task instances.",
        "",
        "| workers | run wall (s) | plan→merge (s) | score_shard each (s) | merge (s) | feature drift (s) | "
        "performance (s) | report (s) | peak task RSS (MiB) | peak all workers (MiB) | rows/s (run) |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in payload["runs"]:
        each = ", ".join(f"{s['duration_s']:.0f}" for s in m["shards"])
        t = m["tasks_s"]
        lines.append(
            f"| {m['workers']} | {m['run_wall_s']:.1f} | {m['sharded_s']:.1f} | {each} | "
            f"{t['merge_shards']} | {t['feature_drift']} | {t['performance']} | {t['report']} | "
            f"{m['peak_task_rss_mib']:.0f} | {m['peak_workers_rss_mib']:.0f} | "
            f"{payload['rows'] / m['run_wall_s']:,.0f} |"
        )
    runs = payload["runs"]
    if len(runs) > 1:
        base = runs[0]
        lines += [""] + [
            f"Speed-up with {m['workers']} workers: run {base['run_wall_s'] / m['run_wall_s']:.2f}×, "
            f"sharded part {base['sharded_s'] / m['sharded_s']:.2f}×; shards ran on "
            f"{sum(1 for got in m['shards_by_worker'].values() if got)} workers "
            f"({', '.join(str(got) for got in m['shards_by_worker'].values())})."
            for m in runs[1:]
        ]
    lines += [
        "",
        "Results equal across worker counts (report, drift and performance JSON, predictions): "
        f"**{payload['equal_results']}**.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shard-rows", type=int, default=2_500_000)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS_SHARDED.md")
    parser.add_argument("--json-out", type=Path, default=ROOT / "bench" / "sharded.json")
    args = parser.parse_args()

    import psutil

    from tests.airflow_stack import redis_or_reason, running_stack

    reason = redis_or_reason()
    if reason:
        print(f"skipped: the sharded benchmark needs Redis for the CeleryExecutor: {reason}", file=sys.stderr)
        sys.exit(NO_REDIS)
    root = Path(tempfile.mkdtemp(prefix="churnops-bench-sharded-"))
    monitoring = {"chunk_rows": args.chunk_rows, "shard_rows": args.shard_rows}
    runs = []
    with running_stack(root, "CeleryExecutor", celery_workers=0, monitoring=monitoring) as stack:
        started = time.perf_counter()
        stack.run("churnops", "train", "--json", timeout=900)
        stack.run(
            "churnops",
            "simulate",
            "--start",
            DAY,
            "--days",
            "1",
            "--rows-per-day",
            str(args.rows),
            "--seed",
            "11",
            timeout=1800,
        )
        print(f"trained and simulated in {time.perf_counter() - started:.0f} s", flush=True)
        stack.unpause("churn_monitoring")
        for k, workers in enumerate(args.workers):
            runs.append(measure(stack, workers, first=k == 0, timeout=args.timeout))
            print(json.dumps({key: value for key, value in runs[-1].items() if key != "result"}), flush=True)
        database = stack.database
    equal = all(m["result"] == runs[0]["result"] for m in runs)
    payload = {
        "command": "python bench/bench_sharded.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": psutil.virtual_memory().total / 2**30,
            "platform": platform.platform(),
        },
        "database": database,
        "rows": args.rows,
        "shard_rows": args.shard_rows,
        "chunk_rows": args.chunk_rows,
        "runs": runs,
        "equal_results": equal,
    }
    args.json_out.write_text(json.dumps(payload, indent=2) + "\n")
    args.output.write_text(markdown(payload))
    print(markdown(payload))
    if not equal:
        sys.exit("the results differ between worker counts")


if __name__ == "__main__":
    main()
