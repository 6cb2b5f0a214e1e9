"""Load ``airflow_settings.yaml`` (Astro CLI format) into an Airflow with Airflow's own CLI.

The file lists the connections, pools and Variables churnops needs. ``load_settings`` reads and
checks it; ``import_files`` turns it into the JSON files ``airflow pools|variables|connections
import`` take; ``apply_settings`` runs those imports. Applying twice changes nothing: pools are
set to the file's values, existing connections and Variables are kept unless ``overwrite`` (so a
cooldown an operator changed in the UI survives a restart of the stack).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from churnops.errors import ChurnopsInputError

__all__ = ["AirflowSettings", "apply_settings", "import_files", "load_settings"]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConnectionEntry(_Entry):
    conn_id: str = Field(min_length=1)
    conn_type: str = Field(min_length=1)
    conn_host: str | None = None
    conn_schema: str | None = None
    conn_login: str | None = None
    conn_password: str | None = None
    conn_port: int | None = None
    conn_extra: dict[str, Any] | str | None = None


class PoolEntry(_Entry):
    pool_name: str = Field(min_length=1)
    pool_slot: int = Field(ge=0)
    pool_description: str = ""


class VariableEntry(_Entry):
    variable_name: str = Field(min_length=1)
    variable_value: Any
    variable_description: str | None = None


class _Objects(_Entry):
    connections: list[ConnectionEntry] = []
    pools: list[PoolEntry] = []
    variables: list[VariableEntry] = []


class AirflowSettings(_Entry):
    """An ``airflow_settings.yaml``: the connections, pools and Variables under its ``airflow`` key."""

    airflow: _Objects = _Objects()


def load_settings(path: str | Path) -> AirflowSettings:
    """The file, checked (unknown keys and duplicate names rejected).

    Args:
        path: the settings file.

    Returns:
        Its objects.

    Raises:
        ChurnopsInputError: the file is missing, is not valid YAML, breaks the format, or lists a
            connection, pool or Variable twice.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        settings = AirflowSettings.model_validate(raw)
    except FileNotFoundError as exc:
        raise ChurnopsInputError(f"{path}: no such settings file") from exc
    except (yaml.YAMLError, ValueError) as exc:
        raise ChurnopsInputError(f"{path}: not a valid airflow_settings file: {exc}") from exc
    for kind, names in (
        ("connection", [c.conn_id for c in settings.airflow.connections]),
        ("pool", [p.pool_name for p in settings.airflow.pools]),
        ("variable", [v.variable_name for v in settings.airflow.variables]),
    ):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ChurnopsInputError(f"{path}: {kind} listed twice: {', '.join(duplicates)}")
    return settings


def import_files(settings: AirflowSettings, folder: Path) -> dict[str, Path]:
    """Write ``pools.json``, ``variables.json`` and ``connections.json`` as the Airflow CLI imports them.

    Args:
        settings: the objects to import.
        folder: where the files are written (created).

    Returns:
        The files written by kind (``pools``, ``variables``, ``connections``); a kind without
        objects has no file.
    """
    objects = settings.airflow
    content: dict[str, dict[str, Any]] = {
        "pools": {
            p.pool_name: {"slots": p.pool_slot, "description": p.pool_description, "include_deferred": False}
            for p in objects.pools
        },
        # Values are stored as text; a dict with a "value" key carries the description.
        "variables": {
            v.variable_name: {"value": _text(v.variable_value), "description": v.variable_description}
            for v in objects.variables
        },
        "connections": {
            c.conn_id: {
                key: value
                for key, value in {
                    "conn_type": c.conn_type,
                    "host": c.conn_host,
                    "schema": c.conn_schema,
                    "login": c.conn_login,
                    "password": c.conn_password,
                    "port": c.conn_port,
                    "extra": json.dumps(c.conn_extra) if isinstance(c.conn_extra, dict) else c.conn_extra,
                }.items()
                if value is not None
            }
            for c in objects.connections
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind, data in content.items():
        if data:
            written[kind] = folder / f"{kind}.json"
            written[kind].write_text(json.dumps(data, indent=2, sort_keys=True))
    return written


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def apply_settings(path: str | Path, *, overwrite: bool = False, airflow: str = "airflow") -> dict[str, Any]:
    """Import the file's objects with ``airflow … import``; return what was imported.

    Args:
        path: the settings file.
        overwrite: replace existing Variables and connections (pools are always set).
        airflow: the Airflow CLI to run.

    Returns:
        ``{"file", "overwrite", "pools", "variables", "connections"}``: the names imported.

    Raises:
        ChurnopsInputError: the file is not valid (:func:`load_settings`).
        RuntimeError: an ``airflow … import`` command failed.
    """
    settings = load_settings(path)
    with tempfile.TemporaryDirectory(prefix="churnops-settings-") as tmp:
        files = import_files(settings, Path(tmp))
        commands = []
        if "pools" in files:
            commands.append([airflow, "pools", "import", str(files["pools"])])
        if "variables" in files:
            commands.append(
                [
                    airflow,
                    "variables",
                    "import",
                    str(files["variables"]),
                    "--action-on-existing-key",
                    "overwrite" if overwrite else "skip",
                ]
            )
        if "connections" in files:
            commands.append(
                [airflow, "connections", "import", str(files["connections"])] + (["--overwrite"] if overwrite else [])
            )
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(
                    f"`{' '.join(command[:3])}` failed ({done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-2000:]}"
                )
    objects = settings.airflow
    return {
        "file": str(path),
        "overwrite": overwrite,
        "pools": [p.pool_name for p in objects.pools],
        "variables": [v.variable_name for v in objects.variables],
        "connections": [c.conn_id for c in objects.connections],
    }
