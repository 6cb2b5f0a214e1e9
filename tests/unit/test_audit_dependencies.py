"""The offline dependency audit: OSV records on disk decide which pins are vulnerable."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT


def _audit_module():
    spec = importlib.util.spec_from_file_location("audit_dependencies", ROOT / "scripts" / "audit_dependencies.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


audit = _audit_module()


def _advisory(
    db: Path,
    package_dir: str,
    advisory_id: str,
    package: str,
    events: list[dict],
    *,
    versions: list[str] = (),
    aliases: list[str] = (),
    withdrawn: str | None = None,
    as_json=False,
):
    record = {
        "id": advisory_id,
        "modified": "2026-07-01T00:00:00Z",
        "aliases": list(aliases),
        "summary": f"{advisory_id} summary",
        "affected": [
            {
                "package": {"name": package, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
                "versions": list(versions),
            }
        ],
    }
    if withdrawn:
        record["withdrawn"] = withdrawn
    folder = db / "vulns" / package_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{advisory_id}.{'json' if as_json else 'yaml'}"
    path.write_text(json.dumps(record) if as_json else yaml.safe_dump(record))


@pytest.fixture()
def advisory_db(tmp_path: Path) -> Path:
    db = tmp_path / "advisory-database"
    _advisory(db, "Jinja2", "PYSEC-1", "jinja2", [{"introduced": "0"}, {"fixed": "3.1.3"}], aliases=["CVE-1"])
    _advisory(db, "jinja2", "PYSEC-2", "jinja2", [{"introduced": "3.0"}, {"last_affected": "3.1.2-NA"}])
    _advisory(
        db,
        "requests",
        "PYSEC-3",
        "requests",
        [{"introduced": "2.0"}, {"fixed": "2.2"}],
        versions=["2.31.0"],
        as_json=True,
    )  # listed explicitly although outside the range
    _advisory(db, "requests", "PYSEC-4", "requests", [{"introduced": "0"}], withdrawn="2026-01-01T00:00:00Z")
    _advisory(
        db,
        "mlflow",
        "PYSEC-5",
        "mlflow",
        [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "3.0"}, {"fixed": "3.7.0"}],
    )
    _advisory(db, "mlflow", "PYSEC-6", "mlflow", [{"introduced": "0"}, {"last_affected": "unknown"}])
    # events out of order, as the OSV schema allows: evaluated sorted
    _advisory(db, "numpy", "PYSEC-7", "numpy", [{"fixed": "1.5"}, {"introduced": "1.2"}])
    # a limit caps the whole range
    _advisory(db, "scipy", "PYSEC-8", "scipy", [{"introduced": "0"}, {"limit": "1.10"}])
    _advisory(db, "pandas", "PYSEC-9", "pandas", [{"introduced": "9"}], versions=["2.0"])  # listed as "2.0"
    return db


@pytest.mark.parametrize(
    ("pins", "expected"),
    [
        ({"jinja2": "3.1.2"}, {"PYSEC-1", "PYSEC-2"}),  # below a fix; at a "-NA" last_affected bound
        ({"jinja2": "3.1.3"}, set()),  # the fixed release and past last_affected
        ({"requests": "2.31.0"}, {"PYSEC-3"}),  # explicit version list; the withdrawn record is ignored
        ({"mlflow": "1.5"}, {"PYSEC-5", "PYSEC-6"}),  # first of two affected spans
        ({"mlflow": "2.5"}, {"PYSEC-6"}),  # between the spans; an unreadable bound is reported, not passed
        ({"mlflow": "3.7.0", "pyarrow": "1.0"}, {"PYSEC-6"}),  # no folder for pyarrow: nothing known
        ({"numpy": "1.3"}, {"PYSEC-7"}),
        ({"numpy": "1.1"}, set()),
        ({"numpy": "1.5"}, set()),
        ({"scipy": "1.9"}, {"PYSEC-8"}),
        ({"scipy": "1.10"}, set()),
        ({"pandas": "2.0.0"}, {"PYSEC-9"}),  # the same release as "2.0"
    ],
)
def test_offline_findings_follow_osv_ranges(advisory_db, pins, expected):
    findings, _, newest = audit.offline_findings(advisory_db, pins)
    assert {finding.advisory for finding in findings} == expected
    assert newest.startswith("2026-07-01")


def test_fixed_versions_are_reported(advisory_db):
    (finding,) = [f for f in audit.offline_findings(advisory_db, {"mlflow": "3.1"})[0] if f.advisory == "PYSEC-5"]
    assert finding.fixed_in == ("2.0", "3.7.0")
    assert "PYSEC-5" in str(finding) and "fixed in 2.0, 3.7.0" in str(finding)


def test_offline_audit_fails_on_findings_unless_known(advisory_db, tmp_path, capsys):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pip freeze\nJinja2==3.1.2\nrequests==2.32.0\n")
    known = tmp_path / "audit-known.txt"
    known.write_text("# accepted\nPYSEC-2 bound is 3.0.3-NA, reviewed\n")
    assert audit.offline_audit(advisory_db, constraints, known) == 1  # PYSEC-1 is not accepted
    assert "FINDING jinja2==3.1.2: PYSEC-1 (CVE-1)" in capsys.readouterr().out

    known.write_text("CVE-1 accepted by its alias\nPYSEC-2 reviewed\n")
    assert audit.offline_audit(advisory_db, constraints, known) == 0
    out = capsys.readouterr().out
    assert "2 pins" in out and "2 finding(s)" in out and "FINDING" not in out


def test_offline_audit_of_a_missing_database_fails(tmp_path, capsys):
    assert audit.offline_audit(tmp_path / "nowhere", tmp_path / "c.txt", tmp_path / "k.txt") == 2
    assert "is not a directory" in capsys.readouterr().out


def test_offline_audit_of_a_folder_without_advisories_fails_instead_of_passing(tmp_path, capsys):
    """A wrong folder (an empty one, a bare git mirror) must not read as "0 findings"."""
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("jinja2==3.1.2\n")
    (tmp_path / "mirror.git" / "objects").mkdir(parents=True)
    assert audit.offline_audit(tmp_path / "mirror.git", constraints, tmp_path / "k.txt") == 2
    assert "holds no advisories" in capsys.readouterr().out


def test_pinned_packages_reads_a_freeze_file(tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# header\nJinja2==3.1.2\nuvicorn[standard]==0.30.0\n-e .\nfoo==1.0 ; python_version>'3'\n")
    assert audit.pinned_packages(constraints) == {"jinja2": "3.1.2", "uvicorn": "0.30.0", "foo": "1.0"}


# The repository's snapshot (.ci/advisories) and the --require contract CI relies on.


def _refresh_module():
    spec = importlib.util.spec_from_file_location("refresh_advisories", ROOT / "scripts" / "refresh_advisories.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _manifest() -> dict:
    return json.loads((audit.SNAPSHOT / audit.MANIFEST).read_text())


@pytest.fixture()
def no_advisory_env(monkeypatch):
    monkeypatch.delenv("CHURNOPS_ADVISORY_DB", raising=False)


def test_require_fails_when_there_is_no_snapshot_and_no_database(tmp_path, capsys, no_advisory_env):
    assert audit.main(["--require"], snapshot=tmp_path / "advisories") == 2
    out = capsys.readouterr().out
    assert "dependency audit FAILED: no advisory data" in out and "make advisories" in out

    assert audit.main([], snapshot=tmp_path / "advisories") == 0  # not required: a skip that says so
    assert "dependency audit SKIPPED: no advisory data" in capsys.readouterr().out


def test_require_fails_on_an_empty_snapshot(tmp_path, capsys, no_advisory_env):
    (tmp_path / "advisories" / "vulns").mkdir(parents=True)
    assert audit.main(["--require"], snapshot=tmp_path / "advisories") == 2
    assert "holds no advisories" in capsys.readouterr().out


def test_an_explicit_database_that_cannot_be_read_fails_rather_than_falling_back(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHURNOPS_ADVISORY_DB", str(tmp_path / "nowhere"))
    assert audit.main(["--require"]) == 2  # the repository's snapshot is there, but not what was asked for
    assert "is not a directory" in capsys.readouterr().out


def test_require_fails_online_when_no_service_answers(capsys, monkeypatch):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setattr(audit, "SERVICES", {"osv": audit.urllib.request.Request("http://127.0.0.1:9/")})
    assert audit.main(["--online", "--require"]) == 2
    assert "dependency audit FAILED: no vulnerability service answers (osv: " in capsys.readouterr().out


def test_the_snapshot_was_made_for_exactly_the_pinned_packages():
    manifest = _manifest()
    pins = audit.pinned_packages()
    assert sorted(manifest["packages"]) == sorted(pins), "constraints.txt changed: run `make advisories`"
    source = manifest["source"]
    assert source["repository"].startswith("https://github.com/") and len(source["commit"]) == 40
    assert source["commit_date"][:4].isdigit()
    held = {path.stem: audit.load_osv(path) for path in (audit.SNAPSHOT / "vulns").glob("*.json")}
    assert set(held) <= set(pins) and sum(map(len, held.values())) == manifest["records"]
    assert {"jinja2", "requests", "mlflow", "apache-airflow"} <= set(held)
    assert "Attribution 4.0 International" in (audit.SNAPSHOT / "LICENSE").read_text()  # CC-BY-4.0


def test_make_audit_passes_on_the_current_pins_and_dates_its_data():
    """What `make audit` runs, as a process: the repository's snapshot, required, no network."""
    env = {key: value for key, value in os.environ.items() if key != "CHURNOPS_ADVISORY_DB"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit_dependencies.py"), "--require"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    source = _manifest()["source"]
    assert f"advisories from {source['repository']} at {source['commit'][:12]}" in done.stdout
    assert f"(commit of {source['commit_date'][:10]}, " in done.stdout and "days old" in done.stdout
    assert f"{len(audit.pinned_packages())} pins" in done.stdout and " 0 finding(s)" in done.stdout


def test_the_snapshot_finds_old_vulnerable_pins(tmp_path, capsys):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("mlflow==3.5.0\nJinja2==3.1.2\nrequests==2.31.0\n")
    assert audit.offline_audit(audit.SNAPSHOT, constraints, tmp_path / "none.txt") == 1
    out = capsys.readouterr().out
    assert "FINDING jinja2==3.1.2: " in out and "CVE-2024-22195" in out and "fixed in 3.1.3" in out
    assert "FINDING requests==2.31.0: " in out and "CVE-2024-35195" in out and "fixed in 2.32.0" in out
    assert "FINDING mlflow==3.5.0: " in out and "CVE-2025-15379" in out and "fixed in 3.8.1" in out


def test_a_pin_the_snapshot_was_not_made_for_fails(tmp_path, capsys):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("jinja2==3.1.6\nsome-new-package==1.0\n")
    assert audit.offline_audit(audit.SNAPSHOT, constraints, tmp_path / "none.txt") == 2
    out = capsys.readouterr().out
    assert "FAILED: the snapshot was not made for 1 pinned package(s) (some-new-package)" in out
    assert "make advisories" in out


def test_an_incomplete_snapshot_fails(tmp_path, capsys):
    snapshot = tmp_path / "advisories"
    shutil.copytree(audit.SNAPSHOT, snapshot)
    (snapshot / "vulns" / "jinja2.json").unlink()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("jinja2==3.1.2\n")
    assert audit.offline_audit(snapshot, constraints, tmp_path / "none.txt") == 2
    assert "an incomplete snapshot" in capsys.readouterr().out


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run([*command, "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_make_advisories_snapshots_the_pinned_packages_of_a_git_copy(tmp_path, capsys):
    database = tmp_path / "advisory-database"
    _advisory(database, "Jinja2", "PYSEC-1", "jinja2", [{"introduced": "0"}, {"fixed": "3.1.3"}], aliases=["CVE-1"])
    _advisory(database, "unpinned", "PYSEC-2", "unpinned", [{"introduced": "0"}])
    record = database / "vulns" / "Jinja2" / "PYSEC-1.yaml"
    record.write_text(record.read_text() + "details: long text\nreferences:\n- {type: WEB, url: 'https://x'}\n")
    (database / "LICENSE").write_text("Attribution 4.0 International\n\n")
    _git(tmp_path, "init", "--quiet", str(database))
    _git(database, "add", ".")
    _git(database, "commit", "--quiet", "-m", "records")
    _git(tmp_path, "clone", "--quiet", "--bare", str(database), str(tmp_path / "mirror.git"))
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("jinja2==3.1.2\nrequests==2.32.5\n")
    snapshot = tmp_path / "advisories"
    refresh = _refresh_module()

    with pytest.raises(refresh.RefreshError, match="no origin remote"):
        refresh.build_snapshot(database, None, snapshot, constraints)
    with pytest.raises(refresh.RefreshError, match="not a git repository"):
        refresh.build_snapshot(tmp_path, "x", snapshot, constraints)
    with pytest.raises(refresh.RefreshError, match="not its top"):
        refresh.build_snapshot(database / "vulns", "x", snapshot, constraints)
    assert not snapshot.exists()

    manifest = refresh.build_snapshot(tmp_path / "mirror.git", None, snapshot, constraints)  # origin: the clone
    assert manifest["source"]["repository"] == str(database)
    assert manifest["source"]["commit"] == _git(database, "rev-parse", "HEAD").strip()
    assert manifest["packages"] == ["jinja2", "requests"] and manifest["records"] == 1
    assert sorted(p.name for p in snapshot.rglob("*")) == ["LICENSE", "SOURCE.json", "jinja2.json", "vulns"]
    (kept,) = audit.load_osv(snapshot / "vulns" / "jinja2.json")
    assert "details" not in kept and "references" not in kept and kept["modified"] == "2026-07-01T00:00:00Z"

    assert audit.offline_audit(snapshot, constraints, tmp_path / "none.txt") == 1
    out = capsys.readouterr().out
    committed = _git(database, "log", "-1", "--format=%cs").strip()
    assert f"advisories from {database} at " in out and f"(commit of {committed}, " in out
    assert "FINDING jinja2==3.1.2: PYSEC-1 (CVE-1), fixed in 3.1.3: PYSEC-1 summary" in out

    assert audit.offline_audit(database, constraints, tmp_path / "none.txt") == 1  # the checkout itself
    assert f"advisories from {database} at {manifest['source']['commit'][:12]} (commit of {committed}, " in (
        capsys.readouterr().out
    )
