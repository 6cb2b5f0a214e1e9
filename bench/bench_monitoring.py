"""Benchmarks of daily monitoring and of scoring; writes bench/RESULTS_MONITORING.md.

    .venv/bin/python bench/bench_monitoring.py [--rows 100000 1000000] [--families ...] [--champion F]
        [--label-days N] [--score-rows R] [--label TEXT] [--append]

In a temporary CHURNOPS_HOME (fresh SQLite MLflow store):

1. ``churnops train --families <f> --cv-folds 2 --json`` once per family (subprocess), the
   champion's family first, so it holds ``@champion`` and every family has a registered version.
2. Per measured size R: ``churnops.devtools.simulate.write_days`` writes ``--label-days`` stable days of
   R rows whose labels have matured by the measured day (they are scored with ``score_batch``
   so the performance step has predictions to join), then the measured day (R rows,
   ``--scenario`` at full intensity).
3. ``churnops.monitoring.steps.run_monitoring`` for the measured day in a fresh subprocess:
   wall time from spawning the interpreter to the call's return, seconds per step, and the
   process's peak RSS at that point (``ru_maxrss``; the parent also reaps the child with
   ``os.wait4``, i.e. RUSAGE_CHILDREN of that child alone, reported in the JSON). Then, in the
   same process, the drift statistics are recomputed by a plain per-column scipy loop
   (``ks_2samp`` on the non-null numbers of the same capped samples, ``chi2_contingency`` on
   the category counts of every row of both sides), to compare with the drift step; the
   p-values are checked against churnops' own.
4. Scoring throughput of every family's registered version:
   ``mlflow.pyfunc.load_model("models:/<name>/<version>").predict`` on the first ``--score-rows``
   raw rows of the largest measured day (Parquet as read, feature columns), in a fresh
   subprocess each, with a breakdown (MLflow schema enforcement, the pipeline's steps, the
   estimator) and the score step's own path (``positive_scores``).

Targets (2 cores): a 1,000,000-row day <= 15 s wall and <= 2 GiB peak RSS, a 10,000,000-row day
<= 1.5 GiB peak RSS (memory flat in the day's size), drift step within 2x of the scipy loop;
scoring >= 200,000 rows/s per family. The child's CPU time (user + system, all its threads, plus
the page worker ``run_monitoring`` forks) is recorded beside the wall time: on a shared machine
it moves less with the load than wall time.
Children inherit the environment, so ``PYTHONPATH=<other checkout>/include`` benchmarks another version of the library.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FAMILIES = ("logistic_regression", "random_forest", "xgboost", "lightgbm")
STEPS = ("check_batch", "score_batch", "feature_drift_step", "prediction_drift_step", "performance_step", "report_step")
DAY = date(2025, 3, 1)
HEADER = """# Monitoring benchmark results

Written by `bench/bench_monitoring.py` (see its docstring for the method). Targets, on a 2-core machine:
one 1,000,000-row day monitored end to end in <= 15 s wall and <= 2 GiB peak RSS, a 10,000,000-row day in
<= 1.5 GiB peak RSS, the drift step within 2x of a plain per-column scipy loop on the same samples, and
>= 200,000 rows/s through the registered pyfunc model.

"""

# ----------------------------------------------------------------------------------------- child processes

SETUP = """
import json, sys
from datetime import date, timedelta
from churnops.config import churnops_home, load_config
from churnops.monitoring.shards import score_batch
from churnops.devtools.simulate import write_days

args = json.loads(sys.argv[1])
config = load_config()
day = date.fromisoformat(args["day"])
last_label_day = day - timedelta(days=config.monitoring.label_delay_days)
first_label_day = last_label_day - timedelta(days=args["label_days"] - 1)
write_days(config, churnops_home(), first_label_day, args["label_days"], rows_per_day=args["rows"],
           scenario="stable", seed=args["seed"])
for k in range(args["label_days"]):
    score_batch(config, first_label_day + timedelta(days=k))
write_days(config, churnops_home(), day, 1, rows_per_day=args["rows"], scenario=args["scenario"],
           seed=args["seed"], drift_start=day - timedelta(days=30))
"""

MONITOR = """
import json, sys, time
started = time.perf_counter()
from datetime import date
import churnops.monitoring.shards as shards
import churnops.monitoring.steps as mp
from churnops.config import load_config
from churnops.data import partition
from churnops.monitoring import batch_files

args = json.loads(sys.argv[1])
times, returned = {}, {}

def timed(name, function):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            returned[name] = function(*a, **k)
            return returned[name]
        finally:
            times[name] = time.perf_counter() - t0
    return wrapper

# Each step is timed where run_monitoring (steps) or score_batch (shards) looks it up.
for name in args["steps"]:
    setattr(mp, name, timed(name, getattr(mp, name)))
shards.merge_shards = timed("merge_shards", shards.merge_shards)
config = load_config()
day = date.fromisoformat(args["day"])
imported = time.perf_counter()
result = mp.run_monitoring(config, day)
finished = time.perf_counter()
finished_epoch = time.time()
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
# The page's evidently child (reaped by run_monitoring) works beside the steps: its CPU counts too.
child = resource.getrusage(resource.RUSAGE_CHILDREN)
child_cpu = child.ru_utime + child.ru_stime
run_peak_kib, run_cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime + child_cpu

# The baseline: a plain per-column scipy loop on the same inputs: KS on the same capped samples
# (drawn by churnops' own sampler, chunk by chunk as the score step reads the day; not counted),
# chi-square on the category counts of every row of both sides.
import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp
from churnops.data.sources import read_source
from churnops.config import Source
from churnops.monitoring.sampling import current_side, sample_rows

ds, monitoring = config.dataset, config.monitoring
reference = mp.reference_frame(config, result["model_version"])
current = pd.concat([read_source(Source(name=p.stem, path=p)) for p in batch_files(partition("incoming", day))],
                    ignore_index=True)
columns = ds.numeric_features + ds.categorical_features
t0 = time.perf_counter()
ref = sample_rows(reference, monitoring.sample_size, monitoring.seed)
step = monitoring.chunk_rows
chunks = (current.iloc[start:start + step] for start in range(0, len(current), step))
cur = current_side(chunks, len(current), ds.numeric_features, [], monitoring).sampled(ds.numeric_features)
t1 = time.perf_counter()
p_values = {}
for column in ds.numeric_features:
    a = pd.to_numeric(ref[column], errors="coerce").dropna().to_numpy()
    b = pd.to_numeric(cur[column], errors="coerce").dropna().to_numpy()
    p_values[column] = float(ks_2samp(a, b).pvalue)
for column in ds.categorical_features:
    counts = [frame[column].astype(object).fillna("__missing__").value_counts() for frame in (reference, current)]
    table = pd.concat(counts, axis=1).fillna(0).T.to_numpy()
    p_values[column] = float(chi2_contingency(table, correction=False).pvalue) if table.shape[1] > 1 else 1.0
t2 = time.perf_counter()

with open(result["report"].replace("drift_report.json", "feature_drift.json")) as handle:
    ours = {row["feature"]: row["p_value"] for row in json.load(handle)["features"]}
agree = max(abs(ours[c] - p_values[c]) for c in columns)
# The score step's single pass also validates the rows and gathers the drift parts: move that
# time to the steps it belongs to, so each column is what that check costs.
shard_seconds = returned["merge_shards"]["shard_seconds"]
times["check_batch"] += shard_seconds["validate"]
times["feature_drift_step"] += shard_seconds["drift_parts"]
times["score_batch"] -= shard_seconds["validate"] + shard_seconds["drift_parts"]
times.pop("merge_shards", None)
print(json.dumps({"import_s": imported - started, "run_s": finished - imported, "steps": times,
                  "finished_epoch": finished_epoch, "run_peak_rss_mib": run_peak_kib / 1024, "cpu_s": run_cpu,
                  "child_cpu_s": child_cpu, "child_peak_rss_mib": child.ru_maxrss / 1024,
                  "scipy_sample_s": t1 - t0, "scipy_loop_s": t2 - t1, "max_p_value_diff": agree,
                  "decision": result["decision"], "rows": result["rows"]}))
"""

SCORE = """
import json, sys, time
import mlflow
import numpy as np
import pandas as pd
from churnops.config import load_config
from churnops.tracking.runs import configure_mlflow

args = json.loads(sys.argv[1])
config = load_config()
configure_mlflow(config)
t0 = time.perf_counter()
model = mlflow.pyfunc.load_model(f"models:/{config.registry.model_name}/{args['version']}")
t1 = time.perf_counter()
frame = pd.read_parquet(args["batch"], columns=config.dataset.feature_columns)
if args["rows"] < len(frame):
    frame = frame.iloc[:args["rows"]]
model.predict(frame.iloc[:1000])  # warm-up (lazy imports, first-call setup)
t2 = time.perf_counter()
scores = np.asarray(model.predict(frame))
t3 = time.perf_counter()
assert scores.shape == (len(frame), 2), scores.shape

# Where the time goes: MLflow's schema enforcement (none since churnops logs no input schema;
# versions logged before typed every column "any"), then the logged scikit-learn pipeline:
# churnops' preprocessing (coerce, derive, encode) and the estimator.
from mlflow.models.utils import _enforce_schema
pipeline = model.get_raw_model()
schema = model.metadata.get_input_schema()
t4 = time.perf_counter()
enforced = _enforce_schema(frame, schema) if schema is not None else None
t5 = time.perf_counter()
del enforced
coerce, derive, encode = (step for _, step in pipeline[0].steps)
coerced = coerce.transform(frame)
t6 = time.perf_counter()
derived = derive.transform(coerced)
t7 = time.perf_counter()
del coerced
matrix = encode.transform(derived)
t8 = time.perf_counter()
del derived
pipeline[-1].predict_proba(matrix)
t9 = time.perf_counter()
del matrix
# What monitoring's score step calls: the same pipeline without the per-cell schema pass.
from churnops.monitoring.scoring import positive_scores
t10 = time.perf_counter()
direct = positive_scores(model, frame, config)
t11 = time.perf_counter()
# Bitwise equal for every family but random_forest, whose predict_proba sums the trees' votes
# in thread order (n_jobs=2), so two calls of the same path may differ in the last bit.
direct_diff = float(np.max(np.abs(direct - scores[:, 1])))
assert direct_diff < 1e-12, direct_diff
print(json.dumps({"load_s": t1 - t0, "rows": len(frame), "predict_s": t3 - t2, "enforce_s": t5 - t4,
                  "coerce_s": t6 - t5, "derive_s": t7 - t6, "encode_s": t8 - t7, "estimator_s": t9 - t8,
                  "direct_s": t11 - t10, "direct_max_abs_diff": direct_diff}))
"""


def run_child(code: str, payload: dict, env: dict) -> tuple[dict, float, float]:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON.

    Returns (that JSON plus ``spawned_epoch``, wall seconds, peak RSS of the child in MiB).
    """
    command = [sys.executable, "-c", code, json.dumps(payload)]
    spawned_epoch = time.time()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # communicate() reads the pipes to the end; wait4 then reaps this child alone, so its
    # rusage is this process's own peak RSS (RUSAGE_CHILDREN would be the max over all children).
    stdout, stderr = _drain(process)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"child failed ({process.returncode}):\n{stderr[-4000:]}")
    lines = [line for line in stdout.splitlines() if line.strip()]
    result = json.loads(lines[-1]) if lines else {}
    result["spawned_epoch"] = spawned_epoch
    return result, wall, usage.ru_maxrss / 1024


def _drain(process: subprocess.Popen) -> tuple[str, str]:
    # Read both pipes without reaping the child (Popen.communicate would wait() and lose the rusage).
    import threading

    chunks: dict[str, str] = {}

    def read(name: str, stream) -> None:
        chunks[name] = stream.read()

    pipes = (("out", process.stdout), ("err", process.stderr))
    threads = [threading.Thread(target=read, args=pipe) for pipe in pipes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return chunks["out"], chunks["err"]


# ----------------------------------------------------------------------------------------- orchestration


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}, {platform.machine()}"


def train(family: str, env: dict) -> dict:
    command = [str(BIN / "churnops"), "train", "--families", family, "--cv-folds", "2", "--json"]
    started = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr[-4000:]}")
    summary = json.loads(out.stdout)
    print(
        f"  trained {family}: version {summary['model_version']} {summary['aliases']} "
        f"({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    return summary


def bench(args: argparse.Namespace) -> dict:
    families = list(dict.fromkeys([args.champion, *args.families]))
    results: dict = {"monitoring": [], "scoring": []}
    with tempfile.TemporaryDirectory(prefix="churnops-bench-monitoring-") as home:
        env = {**os.environ, "CHURNOPS_HOME": home, "PYTHONWARNINGS": "ignore"}
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("CHURNOPS_CONFIG", None)
        print(f"training {families} in {home}", flush=True)
        versions = {family: train(family, env)["model_version"] for family in families}
        batch = None
        for index, rows in enumerate(args.rows):
            # A separate month per size, so sizes never share partitions.
            day = DAY + timedelta(days=62 * index)
            started = time.perf_counter()
            run_child(
                SETUP,
                {
                    "day": day.isoformat(),
                    "rows": rows,
                    "label_days": args.label_days,
                    "scenario": args.scenario,
                    "seed": args.seed,
                },
                env,
            )
            print(
                f"  wrote {rows:,} rows x {args.label_days + 1} days ({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            load = os.getloadavg()[0]
            measured, child_wall, peak = run_child(MONITOR, {"day": day.isoformat(), "steps": list(STEPS)}, env)
            # Wall of the monitoring itself: from spawning the interpreter to run_monitoring's return
            # (the scipy baseline that follows in the same process is not counted).
            wall = measured["finished_epoch"] - measured["spawned_epoch"]
            measured.update(
                rows=rows,
                wall_s=wall,
                child_wall_s=child_wall,
                child_peak_rss_mib=peak,
                peak_rss_mib=measured["run_peak_rss_mib"],
                champion=args.champion,
                version=versions[args.champion],
                load_before=load,
                load_after=os.getloadavg()[0],
            )
            results["monitoring"].append(measured)
            print(
                f"  monitored {rows:,} rows: {wall:.1f} s wall, {peak:.0f} MiB, steps "
                + ", ".join(f"{k} {v:.2f}" for k, v in measured["steps"].items()),
                flush=True,
            )
            batch = Path(home) / "incoming" / f"date={day.isoformat()}" / "batch.parquet"
        score_rows = args.score_rows
        for family in families:
            measured, wall, peak = run_child(
                SCORE, {"version": versions[family], "batch": str(batch), "rows": score_rows}, env
            )
            measured.update(family=family, version=versions[family], peak_rss_mib=peak)
            results["scoring"].append(measured)
            print(
                f"  scored {family}: {measured['rows']:,} rows in {measured['predict_s']:.2f} s "
                f"({measured['rows'] / measured['predict_s']:,.0f} rows/s)",
                flush=True,
            )
    return results


def report(args: argparse.Namespace, results: dict) -> str:
    command = shlex.join([Path(sys.executable).name, "bench/bench_monitoring.py", *sys.argv[1:]])
    title = f"## {args.label}" if args.label else "## Results"
    lines = [
        title,
        "",
        f"Machine: {machine()}. Command: `{command}`"
        + (f" (children run with PYTHONPATH={os.environ['PYTHONPATH']})" if os.environ.get("PYTHONPATH") else "")
        + f". Champion: {args.champion} "
        f"(`churnops train --families <f> --cv-folds 2`, one registered version per family). Each size: "
        f"{args.label_days} stable labelled days (matured, scored beforehand) + the measured day "
        f"(scenario `{args.scenario}`), default monitoring config (sample_size 50,000 per side). "
        "The machine is shared: the 1-minute load average before/after each run is given.",
        "",
        "### One day end to end (`run_monitoring` in a fresh process)",
        "",
        "Wall = from spawning the interpreter to `run_monitoring` returning (Python start, imports, MLflow "
        "included); run = the `run_monitoring` call alone; cpu = the process's user + system CPU time to that point "
        "(all threads, and the forked child that computes the page's evidently part beside the steps; moves less with "
        "the machine's load than wall); peak RSS = the process's high-water mark at that point (the child's is in the "
        "JSON). Step columns in seconds. The day is read once, by the score step's shards, which also tally the "
        "validation rules and gather the drift parts from the same chunks; that time is moved to the columns "
        "it belongs to: check = `check_batch` (files, columns, rows) + the shards' validation tallies; "
        "score = reading, typing, scoring and writing; feature drift = the shards' category/null counts and "
        "KS sampling + `feature_drift_step` (reference split + tests + JSON). Drift vs scipy loop: that "
        "feature-drift figure against a plain loop of `ks_2samp` on the same capped samples and "
        "`chi2_contingency` on the category counts of every row (`value_counts` of both sides) per column, run "
        "after `run_monitoring` in the same process on the day read whole (drawing the samples, in brackets, "
        "is not counted in the ratio).",
        "",
        "| rows | wall (s) | run (s) | cpu (s) | peak RSS (MiB) | rows/s (wall) | check | score | feature drift | "
        "prediction drift | performance | report | scipy loop (s) | drift / scipy | decision | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for m in results["monitoring"]:
        s = m["steps"]
        ratio = s["feature_drift_step"] / m["scipy_loop_s"]
        lines.append(
            f"| {m['rows']:,} | {m['wall_s']:.1f} | {m['run_s']:.1f} | {m['cpu_s']:.1f} | {m['peak_rss_mib']:.0f} | "
            f"{m['rows'] / m['wall_s']:,.0f} | "
            + " | ".join(f"{s[k]:.2f}" for k in STEPS)
            + f" | {m['scipy_loop_s']:.2f} (+{m['scipy_sample_s']:.2f}) | {ratio:.1f}x | {m['decision']} | "
            f"{m['load_before']:.1f}/{m['load_after']:.1f} |"
        )
    lines += [
        "",
        "Targets: 1,000,000 rows <= 15 s wall and <= 2 GiB peak RSS; 10,000,000 rows <= 1.5 GiB peak RSS; "
        "drift step <= 2x the scipy loop. "
        "Largest p-value difference between churnops' tests and the scipy loop: "
        f"{max(m['max_p_value_diff'] for m in results['monitoring']):.2g}.",
        "",
        '### Scoring throughput (`mlflow.pyfunc.load_model("models:/<name>/<version>").predict` on raw rows)',
        "",
        "One `predict` call on the rows of the measured day as read from Parquet (feature columns), after a "
        "1,000-row warm-up. The breakdown re-runs the parts separately: MLflow's input-schema enforcement "
        "(0 for models logged with no input schema, as churnops now logs them; versions logged with every "
        "column typed `any` cost a Python call per cell), then the logged pipeline's coerce / derive / encode "
        "(one-hot for logistic regression, ordinal codes for the tree ensembles) steps and the estimator. "
        "`direct` is `churnops.monitoring.positive_scores` (the score step: the pyfunc in 250,000-row chunks, "
        "skipping the per-cell pass of an all-`any` schema); its scores are checked against the pyfunc's "
        "(bitwise equal except for random_forest, whose predict_proba sums tree votes in thread order and so "
        "differs in the last bit between any two calls).",
        "",
        "| family | version | rows | load (s) | predict (s) | rows/s | enforce (s) | coerce (s) | derive (s) | "
        "encode (s) | estimator (s) | direct (s) | direct rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["scoring"]:
        lines.append(
            f"| {s['family']} | {s['version']} | {s['rows']:,} | {s['load_s']:.2f} | {s['predict_s']:.2f} | "
            f"{s['rows'] / s['predict_s']:,.0f} | {s['enforce_s']:.2f} | {s['coerce_s']:.2f} | {s['derive_s']:.2f} | "
            f"{s['encode_s']:.2f} | {s['estimator_s']:.2f} | {s['direct_s']:.2f} | {s['rows'] / s['direct_s']:,.0f} |"
        )
    worst = max(s["direct_max_abs_diff"] for s in results["scoring"])
    lines += ["", f"Target: >= 200,000 rows/s per family. Largest |direct - pyfunc| score difference: {worst:.2g}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="rows of the measured day")
    parser.add_argument(
        "--families", nargs="+", choices=FAMILIES, default=list(FAMILIES), help="families to register and score"
    )
    parser.add_argument(
        "--champion",
        choices=FAMILIES,
        default="lightgbm",
        help="family trained first, hence @champion, used by monitoring",
    )
    parser.add_argument("--label-days", type=int, default=2, help="matured labelled days before the measured day")
    parser.add_argument(
        "--scenario", default="covariate_drift", choices=["stable", "covariate_drift", "concept_drift", "mixed"]
    )
    parser.add_argument(
        "--score-rows", type=int, default=200_000, help="rows of the largest measured day scored per family"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS_MONITORING.md")
    parser.add_argument("--json-out", type=Path, help="also write the raw measurements as JSON here")
    parser.add_argument("--label", help="heading of this run's section (default: Results)")
    parser.add_argument("--append", action="store_true", help="append this run's section instead of rewriting the file")
    args = parser.parse_args()
    results = bench(args)
    text = report(args, results)
    if args.append and args.output.is_file():
        args.output.write_text(args.output.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + text, encoding="utf-8")
    else:
        args.output.write_text(HEADER + text, encoding="utf-8")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
