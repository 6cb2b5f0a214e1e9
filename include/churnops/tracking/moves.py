"""The log of ``@champion`` moves: every promotion and rollback, with its day, in the order they happened.

The registry keeps only where the aliases point now, and a version's ``churnops.decision*`` tags
only its latest decision, so "when did ``@champion`` move" needs a log of its own:
``$CHURNOPS_HOME/registry/<model>/champion_moves.jsonl``, one JSON line per move, appended under
the promotion lock by :func:`~churnops.tracking.promote_version` and
:func:`~churnops.tracking.rollback_champion` right after the aliases move. A retried move that
finds its own earlier move done appends nothing (the last line is already that move).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from churnops.config import RegistryConfig, churnops_home

__all__ = ["MOVES_FILE", "champion_moves_path", "read_champion_moves", "record_champion_move"]

log = logging.getLogger(__name__)

MOVES_FILE = "champion_moves.jsonl"


def champion_moves_path(registry: RegistryConfig) -> Path:
    """Where the model's moves are logged: ``$CHURNOPS_HOME/registry/<model>/champion_moves.jsonl``.

    Args:
        registry: the registered model's name (percent-encoded into one path component).

    Returns:
        The log's path (it may not exist).
    """
    return churnops_home() / "registry" / quote(registry.model_name, safe="") / MOVES_FILE


def read_champion_moves(registry: RegistryConfig) -> list[dict[str, Any]]:
    """Every logged move of ``@champion``, oldest first.

    Args:
        registry: the registered model's name.

    Returns:
        ``[{"date", "from", "to", "decision", "run_id"}]``; an unreadable line (cut short by a
        crash while it was written) is skipped with a warning.
    """
    try:
        lines = champion_moves_path(registry).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    moves = []
    for number, line in enumerate(lines, 1):
        try:
            move = json.loads(line)
        except ValueError:
            log.warning("champion moves: line %d of %s is unreadable; skipped", number, champion_moves_path(registry))
            continue
        if isinstance(move, dict) and move.get("date") and move.get("to"):
            moves.append(move)
    return moves


def record_champion_move(registry: RegistryConfig, moved: dict[str, Any], tags: dict[str, str]) -> None:
    """Append one move to the log, unless it is already its last line (a retry finishing its own move).

    Called under the promotion lock, so lines never interleave.

    Args:
        registry: the registered model's name.
        moved: ``{"champion", "previous_champion"}`` after the move.
        tags: the move's ``churnops.decision*`` tags (its day is ``churnops.decision_as_of``).
    """
    move = {
        "date": tags.get("churnops.decision_as_of", ""),
        "from": moved.get("previous_champion"),
        "to": moved.get("champion"),
        "decision": tags.get("churnops.decision", ""),
        "run_id": tags.get("churnops.decision_run", ""),
    }
    logged = read_champion_moves(registry)
    if logged and logged[-1] == move:
        return
    path = champion_moves_path(registry)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(move, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
