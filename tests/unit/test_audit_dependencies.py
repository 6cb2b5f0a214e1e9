"""The offline dependency audit: OSV records on disk decide which pins are vulnerable."""

from __future__ import annotations

import importlib.util
import json
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
