"""``churnops`` command line: the pipeline's steps without Airflow.

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churnops", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", metavar="PATH", help="config YAML (default: $CHURNOPS_CONFIG or the Telco config)")
        sub.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        sub.add_argument("-v", "--verbose", action="store_true", help="show MLflow and library logs and warnings")
        return sub

    train = command("train", "Run every training step in this process and register the chosen model.")
    train.add_argument("--families", nargs="+", choices=MODEL_FAMILIES, help="model families (default: config)")
    train.add_argument("--cv-folds", type=int, help="cross-validation folds (default: config)")
    train.add_argument("--run-id", help="run identifier; reusing one resumes that run (default: a new id)")
    command("validate", "Check the raw sources against the config; quarantine what fails.")
    return parser


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.pipeline import run_training
    from churnops.tracking import RunContext

    ctx = RunContext(dag_id="cli", run_id=args.run_id or f"train__{uuid.uuid4().hex[:12]}")
    return run_training(ctx, args.config, families=args.families, cv_folds=args.cv_folds)


def _validate(args: argparse.Namespace) -> dict[str, Any]:
    from churnops.config import churnops_home, load_config
    from churnops.pipeline import check_sources
    from churnops.tracking import RunContext

    config = load_config(args.config)
    ctx = RunContext(dag_id="cli", run_id=f"validate__{uuid.uuid4().hex[:12]}")
    out_dir = churnops_home() / "runs" / config.dataset.name / ctx.dag_id / ctx.slug
    checked = check_sources(config, ctx, out_dir)
    return {"passed": True, **checked}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from churnops.errors import ChurnopsInputError

    handler = {"train": _train, "validate": _validate}[args.command]
    if not args.verbose:
        _quiet_libraries()
    try:
        # Libraries print progress to stdout; keep it clean for the JSON result.
        with contextlib.redirect_stdout(sys.stderr):
            result = handler(args)
    except ChurnopsInputError as exc:
        print(f"churnops {args.command}: error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def _quiet_libraries() -> None:
    """Keep stderr for churnops' own messages: library chatter only with ``--verbose``."""
    import logging
    import warnings

    for name in ("mlflow", "alembic", "lightgbm"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


if __name__ == "__main__":
    sys.exit(main())
