"""The demo's summary: each day's monitoring decision, each retraining's decision, the aliases.

Read through the servers' public interfaces only: the Airflow REST API lists churn_retraining's
runs (their as-of day is in their conf) and MLflow's REST API holds each run's decision on its
parent run (``churnops.decision``, ``churnops.gain``, ``churnops.decision_reason``).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

RETRAINING = "churn_retraining"

# churnops.decision on a retraining's parent run → the summary's word for it.
DECISIONS = {
    "promoted": "promoted",
    "rejected": "rejected",
    "conflict": "rejected",  # lost a promotion race: the champion had moved
    "skipped": "stopped_by_cooldown",  # check_cooldown's record (churnops.retraining.record_skip)
}


def retraining_decision(run: dict[str, Any], tags: dict[str, str] | None) -> dict[str, Any]:
    """One retraining run's line of the summary.

    Args:
        run: the run as the Airflow REST API lists it (``dag_run_id``, ``state``, ``conf``).
        tags: the tags of its MLflow parent run, or None when it has none (yet).

    Returns:
        ``{"dag_run_id", "as_of", "decision", "gain", "reason"}``: the decision is promoted,
        rejected or stopped_by_cooldown, else the run's Airflow state (e.g. failed).
    """
    tags = tags or {}
    recorded = tags.get("churnops.decision")
    gain = tags.get("churnops.gain")
    return {
        "dag_run_id": run["dag_run_id"],
        "as_of": (run.get("conf") or {}).get("as_of") or tags.get("churnops.decision_as_of"),
        "decision": DECISIONS.get(recorded or "", recorded or run["state"]),
        "gain": round(float(gain), 4) if gain else None,
        "reason": tags.get("churnops.decision_reason", ""),
    }


def retraining_decisions(demo: Any, experiment_name: str) -> list[dict[str, Any]]:
    """Every churn_retraining run's decision, oldest as-of day first.

    Args:
        demo: the running demo (its Airflow client and MLflow URL).
        experiment_name: the MLflow experiment the retraining runs log to.

    Returns:
        :func:`retraining_decision` for each run.
    """
    runs = demo.api("GET", f"/dags/{RETRAINING}/dagRuns", params={"order_by": "run_after", "limit": 100})["dag_runs"]
    found = demo.http.get(
        f"{demo.mlflow_url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": experiment_name}
    )
    experiment = found.json()["experiment"]["experiment_id"] if found.status_code == 200 else None
    decisions = []
    for run in runs:
        tags = None
        if experiment is not None:
            query = f"tags.`churnops.dag_id` = '{RETRAINING}' and tags.`churnops.run_id` = '{run['dag_run_id']}'"
            query += " and tags.`churnops.step` = 'pipeline'"
            searched = demo.http.post(
                f"{demo.mlflow_url}/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [experiment], "filter": query, "max_results": 1},
            )
            searched.raise_for_status()
            parents = searched.json().get("runs", [])
            if parents:
                tags = {t["key"]: t["value"] for t in parents[0]["data"].get("tags", [])}
        decisions.append(retraining_decision(run, tags))
    return sorted(decisions, key=lambda d: (d["as_of"] or "", d["dag_run_id"]))


def version(number: Any) -> str | None:
    return None if number is None else f"v{number}"


def print_summary(demo: Any, config: Any, first: date, today: date, elapsed: float) -> dict[str, Any]:
    """Write ``summary.json`` under the demo's home and print it.

    Args:
        demo: the running demo.
        config: the churnops config its processes use.
        first: the first simulated day.
        today: the last one.
        elapsed: seconds since the demo started.

    Returns:
        The summary.
    """
    status = json.loads(demo.run("churnops", "status", "--json", "--date", today.isoformat()))
    monitoring = {}
    for offset in range((today - first).days + 1):
        day = first + timedelta(days=offset)
        report = demo.churnops_home / "reports" / f"date={day}" / "drift_report.json"
        monitoring[day.isoformat()] = json.loads(report.read_text())["decision"] if report.exists() else "(no report)"
    aliases = {name: version(status[name]) for name in ("champion", "previous_champion", "challenger")}
    summary = {
        "aliases": aliases,
        "monitoring": monitoring,
        "retraining_decisions": retraining_decisions(demo, config.experiment_name),
        "reports": str(demo.churnops_home / "reports"),
        "seconds": round(elapsed, 1),
        "listening": demo.listening(),  # local mode: every one on 127.0.0.1
    }
    (demo.home / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n==> Summary")
    for day, decision in monitoring.items():
        print(f"    {day}  monitoring decision: {decision}")
    for entry in summary["retraining_decisions"]:
        gain = "" if entry["gain"] is None else f", gain {entry['gain']:+.4f}"
        print(f"    {RETRAINING} {entry['dag_run_id']} (as of {entry['as_of']}): {entry['decision']}{gain}")
        if entry["reason"]:
            print(f"        {entry['reason']}")
    print(f"    model {status['model_name']}: " + ", ".join(f"@{name} {v}" for name, v in aliases.items()))
    print(f"    reports: {summary['reports']}/date=YYYY-MM-DD/ (drift_report.json, drift_report.html)")
    print(f"    summary: {demo.home / 'summary.json'}  ({elapsed:.0f} s)")
    print(f"\n    Airflow UI  {demo.airflow_url}   login: admin / {demo.password()}")
    print(f"    MLflow UI   {demo.mlflow_url}\n", flush=True)
    return summary
