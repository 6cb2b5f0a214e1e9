"""Registered models' artifact digests: recorded at registration, checked before every load.

A churnops model is a cloudpickled scikit-learn pipeline plus a copy of the package
(``code/``): loading one runs whatever code its files name. So the SHA-256 of a version's
artifacts (:func:`artifact_digest`) is recorded when it is registered, twice: as the version's
MLflow tag :data:`ARTIFACT_DIGEST_TAG`, and in churnops' own record
``$CHURNOPS_HOME/registry/<model>/<version>.json`` outside MLflow. :func:`load_registered_model`,
the one way churnops loads a registered version, downloads its artifacts into a private folder,
hashes those very files, compares the digest with both records and only then loads that folder,
so nothing can swap the files between the check and the load.

The churnops record is authoritative: whoever can write only MLflow (its database or its
artifact store) could rewrite the tag to match altered files, but not the record. The tag must
agree with it all the same (it is what the MLflow UI shows). What this guards against, and what
not, is in ``docs/security.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from churnops.config import RegistryConfig, churnops_home
from churnops.errors import ChurnopsInputError
from churnops.tracking.runs import use_tracking_store

__all__ = [
    "ARTIFACT_DIGEST_TAG",
    "ArtifactDigest",
    "ModelIntegrityError",
    "artifact_digest",
    "digest_record_path",
    "load_registered_model",
    "record_artifact_digest",
]

log = logging.getLogger(__name__)

ARTIFACT_DIGEST_TAG = "churnops.artifact_sha256"
"""The model-version tag holding :attr:`ArtifactDigest.sha256` of the version's artifacts."""

CLIENT_WRITTEN_FILE = "registered_model_meta"
"""Written by MLflow's client into a registered model's folder when it downloads one (and into a
local artifact store itself when ``models:/<name>/<version>`` is loaded in place): not part of
what was logged, never read by MLflow when loading, so left out of the digest and deleted
before a load."""


class ModelIntegrityError(ChurnopsInputError):
    """A registered version's artifacts differ from the digest recorded at registration, its two
    records disagree, or it has none and ``registry.allow_unverified_models`` is off.

    A :class:`~churnops.errors.ChurnopsInputError`: changed files in the registry do not change
    back on a retry, so an Airflow task fails at once (and ``churnops`` exits with status 2).
    """


@dataclass(frozen=True)
class ArtifactDigest:
    """The digest of a model's artifact folder and the SHA-256 of each file in it."""

    sha256: str
    """SHA-256 (hex) of the manifest: one line ``<file sha256>  <relative path>\\n`` per file."""
    files: dict[str, str]
    """Each file's SHA-256 (hex) by its path relative to the folder (POSIX separators)."""


def artifact_digest(folder: Path) -> ArtifactDigest:
    """The SHA-256 of a logged model's artifact folder: every file, by sorted relative path and content.

    Precisely: take every regular file under ``folder`` (recursively), except a top-level
    ``registered_model_meta`` (MLflow's client writes it on download). Name each by its path
    relative to ``folder`` with ``/`` separators, sort the names by their UTF-8 bytes, and
    write one manifest line per file: the hex SHA-256 of its content, two spaces, its name and
    ``\\n``. The digest is the hex SHA-256 of that manifest (UTF-8). Directories count only
    through the files they hold. For names without a backslash or newline this is what
    ``find . -type f ! -path ./registered_model_meta -printf '%P\\0' | LC_ALL=C sort -z |
    xargs -0 sha256sum | sha256sum`` prints, run inside ``folder``.

    Args:
        folder: the model's folder (the one holding ``MLmodel``).

    Returns:
        The digest and the per-file hashes.

    Raises:
        ModelIntegrityError: the folder holds a symlink, a special file (FIFO, device, socket)
            or a name with a newline: artifacts are plain files, and the manifest must be unambiguous.
    """
    from churnops.data import file_sha256  # churnops.data imports pandas: only when hashing

    files: dict[str, str] = {}
    for directory, subdirectories, names in os.walk(folder):
        for name in [*names, *subdirectories]:
            path = Path(directory) / name
            relative = PurePosixPath(path.relative_to(folder).as_posix())
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode) or "\n" in str(relative):
                raise ModelIntegrityError(f"model artifact {relative!r} is not a regular file with a one-line name")
            if str(relative) != CLIENT_WRITTEN_FILE:
                files[str(relative)] = file_sha256(path)
    ordered = sorted(files, key=lambda name: name.encode("utf-8"))
    manifest = "".join(f"{files[name]}  {name}\n" for name in ordered)
    return ArtifactDigest(hashlib.sha256(manifest.encode("utf-8")).hexdigest(), {n: files[n] for n in ordered})


def _download(model_uri: str, into: Path) -> Path:
    """``model_uri``'s artifacts copied into ``into``, without the client's ``registered_model_meta``."""
    import mlflow

    use_tracking_store()
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(into)))
    (local / CLIENT_WRITTEN_FILE).unlink(missing_ok=True)
    return local


def digest_record_path(registry: RegistryConfig, version: str) -> Path:
    """Where churnops keeps a version's digest: ``$CHURNOPS_HOME/registry/<model>/<version>.json``.

    Args:
        registry: the registered model's name (percent-encoded into one path component).
        version: the version.

    Returns:
        The record's path (it may not exist).
    """
    return churnops_home() / "registry" / quote(registry.model_name, safe="") / f"{quote(version, safe='')}.json"


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"the digest record {path} cannot be read ({exc}); refusing to trust it") from exc
    if not isinstance(record, dict) or not isinstance(record.get("artifact_sha256"), str):
        raise ModelIntegrityError(f"the digest record {path} has no artifact_sha256; refusing to trust it")
    return record


def record_artifact_digest(registry: RegistryConfig, version: str, origin: str = "registered") -> ArtifactDigest:
    """Record the digest of a registered version's files: churnops' record, then the MLflow tag.

    Computed on a downloaded copy of ``models:/<name>/<version>``, so it describes exactly what
    :func:`load_registered_model` will check (a rerun of a training run that logged its model
    again still registers, and so records, the version's first model). Run right after the
    version is registered; for a version registered before churnops recorded digests, run it
    once with ``origin="adopted"`` after checking its files are good: the operator vouches for them.

    A digest already recorded is never replaced by another one: a retried registration (or
    adoption) whose files still match writes the same again; one whose files changed is refused.

    Args:
        registry: the registered model's name.
        version: the version.
        origin: ``registered`` (at registration) or ``adopted`` (an older version, vouched for).

    Returns:
        The digest recorded.

    Raises:
        ModelIntegrityError: the version already has a digest (its tag, or churnops' record of
            the same run) that its files do not match.
    """
    from mlflow import MlflowClient

    from churnops.data import write_json

    model_version = _version(registry, version)
    run_id = model_version.run_id or ""
    with tempfile.TemporaryDirectory(prefix="churnops-model-") as scratch:
        digest = artifact_digest(_download(f"models:/{registry.model_name}/{version}", Path(scratch)))
    path = digest_record_path(registry, version)
    existing = _read_record(path)
    recorded = {model_version.tags.get(ARTIFACT_DIGEST_TAG)}
    if existing and existing.get("run_id") == run_id:  # a record of another run is left from another store
        recorded.add(existing["artifact_sha256"])
    if recorded - {None, digest.sha256}:
        raise ModelIntegrityError(
            f"{registry.model_name} version {version} was recorded with artifact SHA-256 "
            f"{', '.join(sorted(recorded - {None}))}; its files now give {digest.sha256}: they changed since"
        )
    payload = {
        "model_name": registry.model_name,
        "version": version,
        "run_id": run_id,
        "artifact_sha256": digest.sha256,
        "files": digest.files,
        "origin": origin,
    }
    write_json(path, payload)
    MlflowClient().set_model_version_tag(registry.model_name, version, ARTIFACT_DIGEST_TAG, digest.sha256)
    return digest


def _version(registry: RegistryConfig, version: str) -> Any:
    from mlflow import MlflowClient

    use_tracking_store()
    return MlflowClient().get_model_version(registry.model_name, version)


def _recorded_digest(registry: RegistryConfig, version: str, model_version: Any) -> dict[str, Any] | None:
    """The churnops record, checked against the MLflow tag and the version's run; None if neither exists."""
    name = f"{registry.model_name} version {version}"
    path = digest_record_path(registry, version)
    record = _read_record(path)
    tag = model_version.tags.get(ARTIFACT_DIGEST_TAG)
    if record is None and tag is None:
        return None
    if record is None:
        raise ModelIntegrityError(
            f"refusing to load {name}: MLflow tags it {ARTIFACT_DIGEST_TAG}={tag} but churnops has no "
            f"record of it ({path}); the two records must agree"
        )
    if tag != record["artifact_sha256"]:
        raise ModelIntegrityError(
            f"refusing to load {name}: its MLflow tag {ARTIFACT_DIGEST_TAG} is {tag or 'missing'}, "
            f"churnops' record ({path}) says {record['artifact_sha256']}; the two records must agree"
        )
    if record.get("run_id") != (model_version.run_id or ""):
        raise ModelIntegrityError(
            f"refusing to load {name}: churnops' record ({path}) is of run {record.get('run_id')}, the "
            f"registry's version comes from run {model_version.run_id}: the record belongs to another registry"
        )
    return record


def _changes(recorded: dict[str, str], actual: dict[str, str]) -> str:
    changed = sorted(n for n in recorded.keys() & actual.keys() if recorded[n] != actual[n])
    parts = [
        f"{kind}: {', '.join(names)}"
        for kind, names in (
            ("changed", changed),
            ("added", sorted(actual.keys() - recorded.keys())),
            ("removed", sorted(recorded.keys() - actual.keys())),
        )
        if names
    ]
    return "; ".join(parts) or "the files differ"


def load_registered_model(registry: RegistryConfig, version: str) -> Any:
    """Load one registered version after checking its artifacts against the digest recorded at registration.

    The one public way to load a registered model (monitoring, retraining and serving use it).
    The version's artifacts are downloaded into a private temporary folder, hashed there
    (:func:`artifact_digest`), compared with churnops' record and the MLflow tag, and that same
    folder is loaded; the folder (and the ``sys.path`` entry MLflow adds for its ``code/``)
    is gone when this returns: the model is in memory.

    A version with neither record (registered before churnops recorded digests) is refused
    unless ``registry.allow_unverified_models`` is on, then loaded with a warning;
    :func:`record_artifact_digest` with ``origin="adopted"`` records the digest of such a version.

    Args:
        registry: the registered model's name, and whether unverified versions may load.
        version: the exact version (not an alias, so an alias move cannot change what is checked).

    Returns:
        The version as an MLflow pyfunc model.

    Raises:
        ModelIntegrityError: the artifacts' digest is not the recorded one, the records disagree,
            or the version has no digest and unverified versions are not allowed.
    """
    import mlflow

    name = f"{registry.model_name} version {version}"
    record = _recorded_digest(registry, version, _version(registry, version))
    if record is None and not registry.allow_unverified_models:
        raise ModelIntegrityError(
            f"refusing to load {name}: it has no recorded artifact digest (registered before churnops recorded "
            f"them); record one with churnops.tracking.record_artifact_digest(registry, version, "
            f"origin='adopted') if its files are known good, or set registry.allow_unverified_models: true"
        )
    with tempfile.TemporaryDirectory(prefix="churnops-model-") as scratch:
        local = _download(f"models:/{registry.model_name}/{version}", Path(scratch))
        actual = artifact_digest(local)
        if record is None:
            log.warning("loading %s without a recorded digest (registry.allow_unverified_models)", name)
        elif actual.sha256 != record["artifact_sha256"]:
            raise ModelIntegrityError(
                f"refusing to load {name}: its artifacts' SHA-256 is {actual.sha256}, not {record['artifact_sha256']} "
                f"recorded at registration ({_changes(record.get('files', {}), actual.files)}). Loading a model runs "
                "its code, and its files changed after registration; see docs/security.md"
            )
        try:
            return mlflow.pyfunc.load_model(str(local))
        finally:
            # MLflow prepends the model's code/ to sys.path; that folder is deleted with the copy.
            roots = {scratch, os.path.realpath(scratch)}
            sys.path[:] = [p for p in sys.path if not any(p == r or p.startswith(r + os.sep) for r in roots)]
