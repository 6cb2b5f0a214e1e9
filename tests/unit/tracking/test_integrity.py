"""churnops.tracking.integrity: a registered version loads only if its files are the ones registered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from churnops.config import RegistryConfig, load_config
from churnops.errors import ChurnopsInputError
from churnops.tracking import (
    ARTIFACT_DIGEST_TAG,
    ModelIntegrityError,
    artifact_digest,
    digest_record_path,
    load_registered_model,
    record_artifact_digest,
    register_version,
    version_tags,
)
from tests.helpers import log_tiny_models

REGISTRY = RegistryConfig(model_name="integrity-test-model")
ROWS = [[0.5], [2.5]]


# --- the digest's definition ---------------------------------------------------------------------------------------


def model_folder(root: Path) -> Path:
    files = {
        "MLmodel": "flavors: {}\n",
        "model.pkl": "\x80\x05 pickled",
        "code/churnops/features.py": "print('shipped code')\n",
        "code/churnops/données.py": "x = 1\n",
        "code/registered_model_meta": "nested: kept\n",
        "registered_model_meta": "model_name: m\nmodel_version: '1'\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_digest_is_sha256sum_over_the_sorted_files(tmp_path):
    folder = model_folder(tmp_path / "model")
    pipeline = (
        "find . -type f ! -path ./registered_model_meta -printf '%P\\0' | LC_ALL=C sort -z "
        "| xargs -0 sha256sum | sha256sum"
    )
    coreutils = subprocess.run(["bash", "-c", pipeline], cwd=folder, capture_output=True, text=True, check=True)
    digest = artifact_digest(folder)
    assert digest.sha256 == coreutils.stdout.split()[0]
    assert list(digest.files) == [
        "MLmodel",
        "code/churnops/donn\u00e9es.py",
        "code/churnops/features.py",
        "code/registered_model_meta",
        "model.pkl",
    ], "every file but the client's top-level registered_model_meta, sorted by UTF-8 bytes"


@pytest.mark.parametrize(
    "change",
    [
        lambda f: (f / "model.pkl").write_bytes((f / "model.pkl").read_bytes() + b"\0"),
        lambda f: (f / "code" / "churnops" / "features.py").rename(f / "code" / "churnops" / "features2.py"),
        lambda f: (f / "code" / "churnops" / "sitecustomize.py").write_text("import os\n"),
        lambda f: (f / "code" / "registered_model_meta").unlink(),
    ],
    ids=["a-byte-appended", "a-file-renamed", "a-file-added", "a-file-removed"],
)
def test_any_change_to_the_files_changes_the_digest(tmp_path, change):
    folder = model_folder(tmp_path / "model")
    before = artifact_digest(folder).sha256
    change(folder)
    assert artifact_digest(folder).sha256 != before


def test_the_clients_registered_model_meta_is_not_part_of_the_digest(tmp_path):
    folder = model_folder(tmp_path / "model")
    before = artifact_digest(folder).sha256
    (folder / "registered_model_meta").write_text("model_name: m\nmodel_version: '7'\n")
    assert artifact_digest(folder).sha256 == before
    (folder / "registered_model_meta").unlink()
    assert artifact_digest(folder).sha256 == before


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_link_or_special_file_among_the_artifacts_is_refused(tmp_path, kind):
    folder = model_folder(tmp_path / "model")
    secret = tmp_path / "secret.txt"
    secret.write_text("not a model file\n")
    if kind == "symlink":
        (folder / "code" / "link.py").symlink_to(secret)
    else:
        os.mkfifo(folder / "code" / "link.py")
    with pytest.raises(ModelIntegrityError, match="code/link.py"):
        artifact_digest(folder)


# --- recorded at registration, checked at every load ---------------------------------------------------------------


@pytest.fixture
def logged(churnops_home):
    """Two tiny real models, each logged in its own run: [(run_id, model_uri)]."""
    return log_tiny_models(2)


def register(run_id: str, model_uri: str, with_digest: bool = True) -> str:
    """What ``register_chosen`` does: register the version, then record its digest."""
    version, _ = register_version(model_uri, run_id, REGISTRY, {})
    if with_digest:
        record_artifact_digest(REGISTRY, version)
    return version


def artifact_folder(version: str) -> Path:
    """The version's files in the local artifact store (what an attacker with write access edits)."""
    from mlflow import MlflowClient

    uri = MlflowClient().get_model_version_download_uri(REGISTRY.model_name, version)
    return Path(url2pathname(urlparse(uri).path))


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def test_registration_records_the_same_digest_in_mlflow_and_in_churnops_record(logged):
    run_id, uri = logged[0]
    version = register(run_id, uri)
    record = json.loads(digest_record_path(REGISTRY, version).read_text())
    assert record["artifact_sha256"] == version_tags(REGISTRY, version)[ARTIFACT_DIGEST_TAG]
    assert record["artifact_sha256"] == artifact_digest(artifact_folder(version)).sha256
    assert (record["model_name"], record["version"], record["run_id"]) == (REGISTRY.model_name, version, run_id)
    assert set(record["files"]) >= {"MLmodel", "model.pkl"}


def test_an_intact_version_loads_from_a_private_copy(logged):
    run_id, uri = logged[0]
    version = register(run_id, uri)
    model = load_registered_model(REGISTRY, version)
    assert model.predict(ROWS).tolist() == [0, 1]
    assert not (artifact_folder(version) / "registered_model_meta").exists(), "loaded from a copy, not in place"
    assert not [p for p in sys.path if "churnops-model-" in p], "the copy's code/ left sys.path with the copy"


@pytest.mark.parametrize(
    ("name", "data"),
    [("model.pkl", b"\x00appended after registration"), ("MLmodel", b"\n# edited after registration\n")],
)
def test_a_file_changed_after_registration_is_refused_with_both_digests(logged, name, data):
    run_id, uri = logged[0]
    version = register(run_id, uri)
    expected = version_tags(REGISTRY, version)[ARTIFACT_DIGEST_TAG]
    append(artifact_folder(version) / name, data)
    actual = artifact_digest(artifact_folder(version)).sha256
    with pytest.raises(ModelIntegrityError) as refused:
        load_registered_model(REGISTRY, version)
    message = str(refused.value)
    assert f"refusing to load {REGISTRY.model_name} version {version}" in message
    assert expected in message and actual in message and f"changed: {name}" in message
    assert isinstance(refused.value, ChurnopsInputError), "a task fails at once: a retry finds the same files"


def test_a_file_added_after_registration_is_refused(logged):
    run_id, uri = logged[0]
    version = register(run_id, uri)
    (artifact_folder(version) / "sitecustomize.py").write_text("import os\n")
    with pytest.raises(ModelIntegrityError, match="added: sitecustomize.py"):
        load_registered_model(REGISTRY, version)


def test_a_tag_rewritten_to_match_changed_files_is_refused_by_churnops_record(logged):
    """Whoever writes MLflow alone can change the files and the tag, not churnops' record."""
    from mlflow import MlflowClient

    run_id, uri = logged[0]
    version = register(run_id, uri)
    append(artifact_folder(version) / "model.pkl", b"\x00")
    forged = artifact_digest(artifact_folder(version)).sha256
    MlflowClient().set_model_version_tag(REGISTRY.model_name, version, ARTIFACT_DIGEST_TAG, forged)
    with pytest.raises(ModelIntegrityError, match="the two records must agree"):
        load_registered_model(REGISTRY, version)


@pytest.mark.parametrize("lost", ["tag", "record"])
def test_a_version_missing_one_of_its_two_records_is_refused(logged, lost):
    from mlflow import MlflowClient

    run_id, uri = logged[0]
    version = register(run_id, uri)
    if lost == "tag":
        MlflowClient().delete_model_version_tag(REGISTRY.model_name, version, ARTIFACT_DIGEST_TAG)
    else:
        digest_record_path(REGISTRY, version).unlink()
    with pytest.raises(ModelIntegrityError, match="the two records must agree"):
        load_registered_model(REGISTRY, version)


def test_a_record_of_another_run_is_refused(logged):
    (run_a, uri_a), (run_b, _) = logged
    version = register(run_a, uri_a)
    path = digest_record_path(REGISTRY, version)
    path.write_text(json.dumps({**json.loads(path.read_text()), "run_id": run_b}))
    with pytest.raises(ModelIntegrityError, match="belongs to another registry"):
        load_registered_model(REGISTRY, version)


def test_a_retried_registration_never_replaces_a_recorded_digest(logged):
    run_id, uri = logged[0]
    version = register(run_id, uri)
    append(artifact_folder(version) / "model.pkl", b"\x00")
    with pytest.raises(ModelIntegrityError, match="changed since"):
        register(run_id, uri)


def test_a_rerun_that_logged_its_model_again_records_the_registered_version_files(logged):
    """A rerun of a training run finds its version (by run) while its step logged a second model:
    the digest is of the version's own files, so the rerun agrees with the first registration."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    run_id, uri = logged[0]
    version = register(run_id, uri)
    first = version_tags(REGISTRY, version)[ARTIFACT_DIGEST_TAG]
    with mlflow.start_run(run_id=run_id):
        again = mlflow.sklearn.log_model(
            LogisticRegression().fit(np.array([[0.0], [3.0]]), np.array([0, 1])),
            name="model",
            serialization_format="cloudpickle",
        )
    assert register(run_id, again.model_uri) == version
    assert version_tags(REGISTRY, version)[ARTIFACT_DIGEST_TAG] == first
    assert load_registered_model(REGISTRY, version).predict(ROWS).tolist() == [0, 1]


def test_a_version_without_a_digest_loads_only_when_allowed_or_adopted(logged):
    run_id, uri = logged[0]
    version = register(run_id, uri, with_digest=False)
    with pytest.raises(ModelIntegrityError, match="no recorded artifact digest.*allow_unverified_models"):
        load_registered_model(REGISTRY, version)

    allowing = REGISTRY.model_copy(update={"allow_unverified_models": True})
    assert load_registered_model(allowing, version).predict(ROWS).tolist() == [0, 1]

    digest = record_artifact_digest(REGISTRY, version, origin="adopted").sha256
    assert version_tags(REGISTRY, version)[ARTIFACT_DIGEST_TAG] == digest
    assert json.loads(digest_record_path(REGISTRY, version).read_text())["origin"] == "adopted"
    assert load_registered_model(REGISTRY, version).predict(ROWS).tolist() == [0, 1]
    assert record_artifact_digest(REGISTRY, version, origin="adopted").sha256 == digest, "again: no change"

    append(artifact_folder(version) / "model.pkl", b"\x00")
    with pytest.raises(ModelIntegrityError, match="changed: model.pkl"):
        load_registered_model(allowing, version)  # a recorded digest is checked whatever the switch
    with pytest.raises(ModelIntegrityError, match="changed since"):
        record_artifact_digest(REGISTRY, version, origin="adopted")


def test_monitoring_shares_a_checked_version_but_checks_every_other_one(logged):
    from churnops.monitoring import load_model, shared_reads

    config = load_config().model_copy(update={"registry": REGISTRY})
    first, second = (register(run_id, uri) for run_id, uri in logged)
    append(artifact_folder(second) / "model.pkl", b"\x00")
    with shared_reads():
        model = load_model(config, first)
        assert load_model(config, first) is model, "one check and one load per version within a run"
        with pytest.raises(ModelIntegrityError, match=f"version {second}"):
            load_model(config, second)
