"""Constants and helpers shared by the tests (no side effects: safe to import anywhere)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TELCO_CONFIG = ROOT / "include" / "config" / "telco.yaml"
TELCO_DATA = ROOT / "include" / "data" / "telco"


def toy_dataset(numeric: list[str], categorical: list[str] | None = None) -> dict:
    """A config's ``dataset`` section for an in-memory toy table (id ``id``, target ``y``, positive ``"1"``).

    Its one source never exists: the tests that use it hand the model frames, never files.
    """
    section = {
        "name": "toy",
        "id_column": "id",
        "target": "y",
        "positive_label": "1",
        "sources": [{"name": "main", "path": "/nonexistent/main.csv"}],
        "numeric_features": numeric,
    }
    return section | ({"categorical_features": categorical} if categorical is not None else {})


def telco_table(**read_csv: object):
    """The bundled Telco sources joined on the customer id, in file order: a batch file's columns plus ``churn``.

    Args:
        **read_csv: options for every ``pandas.read_csv`` (e.g. ``dtype=str`` for the files' text as it is).
    """
    import pandas as pd

    frames = [pd.read_csv(TELCO_DATA / f"{name}.csv", **read_csv) for name in ("customers", "services", "accounts")]
    return frames[0].merge(frames[1], on="customerid").merge(frames[2], on="customerid")


def telco_training_rows(rows: int, params: dict[str, dict]) -> tuple:
    """The bundled config with ``training.params`` replaced, and the first ``rows`` joined Telco rows as ``X``, ``y``.

    Returns:
        ``(config, X, y)``: ``X`` the feature columns as pandas reads them, ``y`` 1 for a churner.
    """
    from churnops.config import load_config

    table = telco_table().head(rows)
    config = load_config(TELCO_CONFIG).with_training(params=params)
    return config, table[config.dataset.feature_columns], (table["churn"] == "Yes").to_numpy(dtype=int)


def sha256_tree(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def write_config(path: Path, base: Path = TELCO_CONFIG, **sections) -> Path:
    """Copy ``base`` with some sections updated (source paths made absolute first)."""
    import yaml

    raw = yaml.safe_load(base.read_text())
    for source in raw["dataset"]["sources"]:
        source["path"] = str((base.parent / source["path"]).resolve())
    for section, changes in sections.items():
        raw.setdefault(section, {}).update(changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def edit_config(path: Path, change: Callable[[dict], object]) -> Path:
    """Rewrite the YAML config at ``path`` with ``change`` applied to its mapping in place."""
    import yaml

    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@contextmanager
def churnops_environment(home: Path, config: Path) -> Iterator[None]:
    """``CHURNOPS_HOME`` and ``CHURNOPS_CONFIG`` set for a module's fixture; the previous values restored after.

    The MLflow URIs are cleared and restored too: ``mlflow.set_tracking_uri()`` exports
    ``MLFLOW_TRACKING_URI``, and a module's store left in the environment would later be taken
    for the user's choice by a test that points ``CHURNOPS_HOME`` elsewhere.
    """
    keys = ("CHURNOPS_HOME", "CHURNOPS_CONFIG", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {k: os.environ.get(k) for k in keys}
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(key, None)
    os.environ.update(CHURNOPS_HOME=str(home), CHURNOPS_CONFIG=str(config))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def same_size_out_of_range(path: Path, column: str = "tenure") -> bytes:
    """A CSV file's bytes with one value of ``column`` made negative (``12`` → ``-9``): as long, but out of range."""
    import csv

    lines = path.read_bytes().split(b"\n")
    index = next(csv.reader([lines[0].decode()])).index(column)
    for number, line in enumerate(lines[1:], start=1):
        cells = line.split(b",")
        if b'"' not in line and len(cells) > index and len(cells[index]) >= 2:
            cells[index] = b"-" + b"9" * (len(cells[index]) - 1)
            lines[number] = b",".join(cells)
            return b"\n".join(lines)
    raise AssertionError(f"no {column} to change")


SPECIAL_KINDS = ("fifo", "char_device", "link_to_dev_zero")


def make_special(path: Path, kind: str) -> str:
    """Create at ``path`` a name that is not a regular file; returns what ``file_kind`` says of it.

    ``fifo``: a FIFO (reading it blocks until a writer comes). ``char_device``: a character
    device like ``/dev/zero`` (endless bytes), or a symbolic link to ``/dev/zero`` where creating
    a device is not permitted. ``link_to_dev_zero``: that link.
    """
    import stat

    if kind == "fifo":
        os.mkfifo(path)
        return "FIFO"
    if kind == "char_device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's numbers
            return "character device"
        except PermissionError:
            pass
    os.symlink("/dev/zero", path)
    return "symbolic link to '/dev/zero'"


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError when the block runs longer than ``seconds`` (a read blocked on a FIFO included)."""
    import signal

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: blocked?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def log_tiny_models(count: int = 2) -> list[tuple[str, str]]:
    """``count`` tiny real sklearn models, each logged (cloudpickle) in its own run of the config's
    experiment in the current MLflow store: ``[(run_id, model_uri)]``."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from churnops.config import load_config
    from churnops.tracking import configure_mlflow

    experiment_id = configure_mlflow(load_config())
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    logged = []
    for _ in range(count):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(X, y), name="model", serialization_format="cloudpickle"
            )
            logged.append((run.info.run_id, info.model_uri))
    return logged


def read_drift_page(text: str) -> dict:
    """What a drift page states, read back with the stdlib HTML parser.

    Returns:
        ``{"features": {name: {field: exact JSON value of its data-value}}, "fields": {field: text}
        of the headline elements outside the table, "roles": [data-role of the sections, in page order]}``.
    """
    import json
    from html.parser import HTMLParser

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.features: dict[str, dict] = {}
            self.fields: dict[str, str] = {}
            self.roles: list[str] = []
            self.row: dict | None = None
            self.field: str | None = None

        def handle_starttag(self, tag, attrs):
            found = dict(attrs)
            if "data-role" in found:
                self.roles.append(found["data-role"])
            if tag == "tr" and "data-feature" in found:
                self.row = self.features.setdefault(found["data-feature"], {})
            if "data-field" in found:
                if tag == "td" and self.row is not None:
                    self.row[found["data-field"]] = json.loads(found["data-value"])
                else:
                    self.field = found["data-field"]
                    self.fields[self.field] = ""

        def handle_endtag(self, tag):
            if tag == "tr":
                self.row = None
            if tag in ("strong", "span"):
                self.field = None

        def handle_data(self, data):
            if self.field is not None:
                self.fields[self.field] += data

    reader = Reader()
    reader.feed(text)
    return {"features": reader.features, "fields": reader.fields, "roles": reader.roles}
