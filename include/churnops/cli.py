"""``churnops`` command line: the pipeline's steps without the Airflow scheduler.

Every command takes ``--config`` (default: ``$CHURNOPS_CONFIG``, else the bundled
Telco config). Bad input exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from churnops.config import MODEL_FAMILIES

__all__ = ["main"]

STATE_HELP = """\
promotion state (retrain, rollback, status): the last promotion and the cooldown's length
live in ONE store, shared with the DAGs. Where an Airflow deployment is configured
(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN set, $AIRFLOW_CONFIG, or $AIRFLOW_HOME/airflow.cfg,
AIRFLOW_HOME defaulting to ~/airflow), that is its Airflow Variables churnops_last_promotion,
churnops_last_retraining and churnops_cooldown_days, read and written through Airflow's metadata DB; an Airflow that
cannot be reached is an error (exit 1), never a fall-back. With no Airflow configured at all,
it is $CHURNOPS_HOME/state/promotion.json with policy.cooldown_days. CHURNOPS_STATE=auto
(default), airflow or file chooses explicitly. `churnops status` shows the store in use."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnops",
        description=__doc__.splitlines()[0],
        epilog=STATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("--config", metavar="PATH", help="config YAML (default: $CHURNOPS_CONFIG or the Telco config)")
        sub.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        sub.add_argument("-v", "--verbose", action="store_true", help="show MLflow and library logs and warnings")
        return sub

    train = command("train", "Run every training step in this process and register the chosen model.")
    train.add_argument("--families", nargs="+", choices=MODEL_FAMILIES, help="model families (default: config)")
    train.add_argument("--cv-folds", type=int, help="cross-validation folds (default: config)")
    train.add_argument("--run-id", help="run identifier; reusing one resumes that run (default: a new id)")
    command("validate", "Check the raw sources against the config; quarantine what fails.")
    simulate = command("simulate", "Write simulated production days (batches and labels) under $CHURNOPS_HOME.")
    simulate.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    simulate.add_argument("--days", type=int, required=True)
    simulate.add_argument("--rows-per-day", type=int, default=1000)
    simulate.add_argument(
        "--scenario",
        default="stable",
        choices=["stable", "covariate_drift", "concept_drift", "mixed", "relation_shift"],
    )
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--drift-start", help="day the drift starts ramping up (default: --start)")
    simulate.add_argument("--ramp-days", type=int, default=10, help="days for the drift to reach full intensity")
    monitor = command("monitor", "Monitor one day: validate, score with @champion, drift, performance, decide.")
    monitor.add_argument("--date", required=True, help="the day, YYYY-MM-DD")
    history = command(
        "history",
        "Show the last days' monitoring (drift, prediction drift, ROC-AUC, decisions, @champion moves) "
        "as a table and draw them as a PNG chart.",
    )
    history.add_argument("--date", help="the last day, YYYY-MM-DD (default: the latest monitored day)")
    history.add_argument("--days", type=int, help="how many days (default: monitoring.history_days)")
    history.add_argument(
        "--output", metavar="PATH", help="the PNG (default: $CHURNOPS_HOME/history/history_<date>_<days>d.png)"
    )
    retrain = command(
        "retrain",
        "Train a challenger and promote it per the policy and the cooldown (promotion state below).",
        STATE_HELP,
    )
    retrain.add_argument("--date", required=True, help="as-of day, YYYY-MM-DD")
    retrain.add_argument("--force", action="store_true", help="ignore both cooldowns (recorded as forced)")
    retrain.add_argument("--families", nargs="+", choices=MODEL_FAMILIES, help="model families (default: config)")
    command(
        "status",
        "Show champion, previous champion, last promotion and retraining, last decision, cooldowns, state store.",
        STATE_HELP,
    ).add_argument("--date", help="as-of day for the cooldowns (default: the recorded state only)")
    rollback = command(
        "rollback", "Move @champion back to @previous_champion (recorded as the last promotion).", STATE_HELP
    )
    rollback.add_argument("--reason", default="manual rollback", help="recorded on both versions")
    rollback.add_argument("--date", help="the rollback's date for the cooldown record (default: today)")
    settings = command(
        "airflow-settings",
        "Import airflow_settings.yaml (pools, Variables, connections) "
        "with the Airflow CLI; loading twice changes nothing.",
    )
    settings.add_argument("action", choices=["load"])
    settings.add_argument(
        "file",
        nargs="?",
        default="airflow_settings.yaml",
        help="settings file, Astro CLI format (default: ./airflow_settings.yaml)",
    )
    settings.add_argument(
        "--overwrite", action="store_true", help="replace existing Variables and connections (default: keep them)"
    )
    command("compose-env", "Print a .env for docker-compose.yaml with freshly generated secrets.")
    serve = command(
        "serve", "Serve @champion over HTTP (POST /predict, GET /health, /model-info, /docs), following the alias."
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    return parser


def _airflow_settings(args: argparse.Namespace) -> dict[str, Any]:
    import shutil
    from pathlib import Path

    from churnops.orchestration import apply_settings

    # The airflow next to this interpreter (a venv), else the one on PATH.
    beside = Path(sys.executable).parent / "airflow"
    airflow = str(beside) if beside.is_file() else (shutil.which("airflow") or "airflow")
    return apply_settings(args.file, overwrite=args.overwrite, airflow=airflow)


def _compose_env(args: argparse.Namespace) -> dict[str, Any]:
    import os
    import secrets

    from cryptography.fernet import Fernet

    return {
        "AIRFLOW_UID": os.getuid() if hasattr(os, "getuid") else 50000,  # files on mounts stay yours
        # URL-safe: the database passwords go into the services' database URLs.
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "AIRFLOW_DB_PASSWORD": secrets.token_urlsafe(24),
        "MLFLOW_DB_PASSWORD": secrets.token_urlsafe(24),
        "MLFLOW_ADMIN_USERNAME": "admin",
        "MLFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(24),  # MLflow refuses fewer than 12 characters
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # HMAC-SHA512: 64+ bytes
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW_UI_PORT": 8080,
        "MLFLOW_UI_PORT": 5000,
        "CHURNOPS_SERVE_PORT": 8000,
        "AIRFLOW_WORKER_MEMORY_LIMIT": "6g",
    }


def _serve(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.config import load_config
    from churnops.serving import serve

    return serve(load_config(args.config), host=args.host, port=args.port)


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.tracking import RunContext
    from churnops.training import run_training

    ctx = RunContext(dag_id="cli", run_id=args.run_id or f"train__{uuid.uuid4().hex[:12]}")
    return run_training(ctx, args.config, families=args.families, cv_folds=args.cv_folds)


def _validate(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.config import churnops_home, load_config
    from churnops.tracking import RunContext
    from churnops.training import check_sources

    config = load_config(args.config)
    ctx = RunContext(dag_id="cli", run_id=f"validate__{uuid.uuid4().hex[:12]}")
    out_dir = churnops_home() / "runs" / config.dataset.name / ctx.dag_id / ctx.slug
    checked = check_sources(config, ctx, out_dir)
    return {"passed": True, **checked}


def _simulate(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.config import churnops_home, load_config
    from churnops.days import parse_day
    from churnops.devtools import write_days

    days = write_days(
        load_config(args.config),
        churnops_home(),
        parse_day(args.start),
        args.days,
        rows_per_day=args.rows_per_day,
        scenario=args.scenario,
        seed=args.seed,
        drift_start=parse_day(args.drift_start) if args.drift_start else None,
        ramp_days=args.ramp_days,
    )
    return {"home": str(churnops_home()), "days": days}


def _monitor(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.config import load_config
    from churnops.days import parse_day
    from churnops.monitoring import run_monitoring

    return run_monitoring(load_config(args.config), parse_day(args.date))


def _history(args: argparse.Namespace) -> dict[str, Any]:
    from pathlib import Path

    from churnops.config import churnops_home, load_config
    from churnops.days import parse_day
    from churnops.errors import ChurnopsInputError
    from churnops.monitoring import champion_moves, last_monitored_day, logged_champion_moves, write_history

    config = load_config(args.config)
    day = parse_day(args.date) if args.date else last_monitored_day()
    if day is None:
        raise ChurnopsInputError(f"no monitored day under {churnops_home() / 'reports'}; give --date")
    if args.days is not None and args.days < 1:
        raise ChurnopsInputError(f"--days must be at least 1, not {args.days}")
    days = args.days or config.monitoring.history_days
    output = Path(args.output) if args.output else churnops_home() / "history" / f"history_{day}_{days}d.png"
    rows, chart = write_history(config, day, days, output)
    return {
        "date": day.isoformat(),
        "days": days,
        "chart": str(chart),
        "champion_moves": champion_moves(rows, logged_champion_moves(config, rows)),
        "rows": [row.to_dict() for row in rows],
    }


def _retrain(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.config import load_config
    from churnops.days import parse_day
    from churnops.orchestration import open_promotion_state
    from churnops.retraining import run_retraining

    config = load_config(args.config)
    return run_retraining(
        args.config,
        parse_day(args.date),
        open_promotion_state(config.policy.cooldown_days).state,
        force=args.force,
        families=args.families,
    )


def _status(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import date

    from churnops.config import load_config
    from churnops.days import parse_day
    from churnops.orchestration import open_promotion_state
    from churnops.retraining import check_cooldown, cooldown_status
    from churnops.tracking import alias_version, configure_mlflow, last_decision

    config = load_config(args.config)
    store = open_promotion_state(config.policy.cooldown_days)
    last = store.state.last_promotion()
    cooldown_days = store.state.cooldown_days(config.policy.cooldown_days)
    configure_mlflow(config)
    registry = config.registry
    result: dict[str, Any] = {
        "model_name": registry.model_name,
        "champion": alias_version(registry, registry.champion_alias),
        "previous_champion": alias_version(registry, registry.previous_champion_alias),
        "challenger": alias_version(registry, registry.challenger_alias),
        "last_promotion": last,
        "last_retraining": store.state.last_retraining(),
        "last_decision": last_decision(registry),
        "cooldown_days": cooldown_days,
        "retraining_cooldown_days": config.policy.retraining_cooldown_days,
        "state_store": store.describe(),
    }
    if args.date:
        gate = check_cooldown(config, parse_day(args.date), store.state, force=False)
        result.update(cooldown=gate["cooldown"], cooldown_until=gate["cooldown_until"] or None)
    if last and args.date:
        status = cooldown_status(parse_day(args.date), date.fromisoformat(last["date"]), cooldown_days)
        result.update(cooldown_active=status.active, cooldown_days_left=status.days_left)
    return result


def _rollback(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import date

    from churnops.config import load_config
    from churnops.orchestration import open_promotion_state
    from churnops.retraining import rollback_and_record

    config = load_config(args.config)
    as_of = args.date or date.today().isoformat()  # a human's rollback happens "now"; --date pins it
    return rollback_and_record(
        config,
        open_promotion_state(config.policy.cooldown_days).state,
        {"dag_id": "cli", "run_id": f"rollback__{as_of}", "logical_date": as_of},
        args.reason,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``churnops`` command and print its result (JSON with ``--json``).

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0; 2 for bad input; 1 when the promotion state's store (an Airflow
        metadata DB) cannot be reached. Errors go to stderr in one line.
    """
    args = _parser().parse_args(argv)
    from churnops.errors import ChurnopsInputError, ChurnopsRetryableError

    handler = {
        "train": _train,
        "validate": _validate,
        "simulate": _simulate,
        "monitor": _monitor,
        "history": _history,
        "retrain": _retrain,
        "status": _status,
        "rollback": _rollback,
        "airflow-settings": _airflow_settings,
        "compose-env": _compose_env,
        "serve": _serve,
    }[args.command]
    if not args.verbose:
        _quiet_libraries()
    try:
        # Libraries print progress to stdout; keep it clean for the JSON result.
        with contextlib.redirect_stdout(sys.stderr):
            result = handler(args)
    except ChurnopsInputError as exc:
        print(f"churnops {args.command}: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    except ChurnopsRetryableError as exc:  # the state store, the promotion lock, a file still being written
        print(f"churnops {args.command}: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True))
    elif args.command == "history":
        from churnops.monitoring import HistoryDay, format_history

        print(format_history([HistoryDay.from_dict(row) for row in result["rows"]]))
        for move in result["champion_moves"]:
            logged = move["decision"] != "scored"
            when = f"on {move['date']} ({move['decision']})" if logged else f"before {move['date']}"
            print(f"@champion moved from v{move['from']} to v{move['to']} {when}")
        print(f"chart: {result['chart']}")
    elif args.command == "compose-env":
        print("# Generated by `churnops compose-env` for docker-compose.yaml. Keep it out of version control.")
        for key, value in result.items():
            print(f"{key}={value}")
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def _quiet_libraries() -> None:
    """Keep stderr for churnops' own messages: the libraries' logs only with ``--verbose``.

    Warnings are not silenced: one that reaches the command line is something to fix.
    """
    import logging

    for name in ("mlflow", "alembic", "lightgbm"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
