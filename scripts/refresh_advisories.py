"""Refresh the repository's advisory snapshot, ``.ci/advisories`` (``make advisories``).

From a copy of the PyPA advisory database (https://github.com/pypa/advisory-database) it keeps
every record filed against a package pinned in ``constraints.txt``, whichever versions the record
affects, so that a changed pin is still judged correctly. Records keep the fields the audit reads
(``RECORD_FIELDS``: identity, dates, summary, affected versions); the long ``details`` and
``references`` are left to https://osv.dev/vulnerability/<id>. The snapshot holds:

- ``vulns/<package>.json``: the package's records, one per line, sorted by id;
- ``LICENSE``: the database's license (CC-BY-4.0), which covers these records;
- ``SOURCE.json``: the repository, commit and commit date they were taken from, the pinned
  packages they were taken for, and how many records there are.

The copy is ``--from PATH`` (``ADVISORY_DB=PATH``), a clone or a bare git directory of the
database, read at its HEAD; without it, a shallow clone of ``--url`` made for the refresh.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_dependencies import CONSTRAINTS, MANIFEST, ROOT, SNAPSHOT, parse_osv, pinned_packages  # noqa: E402

UPSTREAM = "https://github.com/pypa/advisory-database"
RECORD_FIELDS = (
    "schema_version",
    "id",
    "modified",
    "published",
    "withdrawn",
    "aliases",
    "related",
    "summary",
    "affected",
)


class RefreshError(RuntimeError):
    """The database copy cannot be read, so the snapshot is left as it was."""


def _git(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    if done.returncode:
        raise RefreshError(f"git {' '.join(args[:2])} in {repo}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def build_snapshot(
    database: Path, repository: str | None = None, snapshot: Path = SNAPSHOT, constraints: Path = CONSTRAINTS
) -> dict:
    """Write the snapshot of ``database``'s HEAD for the pins of ``constraints``, replacing the old one whole.

    Args:
        database: a clone or bare git directory of the PyPA advisory database.
        repository: where that copy comes from, for the manifest; None: its ``origin`` remote.
        snapshot: the folder to write.
        constraints: the pip-freeze file naming the packages to keep.

    Returns:
        The manifest written.

    Raises:
        RefreshError: ``database`` is no git copy of an advisory database, or it has no origin
            remote and ``repository`` is None.
    """
    from packaging.utils import canonicalize_name

    pins = sorted(pinned_packages(constraints))
    commit = _git(database, "rev-parse", "--verify", "HEAD^{commit}").decode().strip()
    if _git(database, "rev-parse", "--is-bare-repository").strip() != b"true":
        top = Path(_git(database, "rev-parse", "--show-toplevel").decode().strip())
        if top.resolve() != database.resolve():
            raise RefreshError(f"{database} is inside the git work tree {top}, not its top: point at the clone")
    committed = _git(database, "log", "-1", "--format=%cI", commit).decode().strip()
    if repository is None:
        origin = subprocess.run(
            ["git", "-C", str(database), "config", "--get", "remote.origin.url"], capture_output=True
        )
        repository = origin.stdout.decode().strip()
        if not repository:
            raise RefreshError(
                f"{database} has no origin remote: say what it is a copy of (--repository / ADVISORY_REPOSITORY)"
            )
    folders = _git(database, "ls-tree", "--name-only", f"{commit}:vulns").decode().split()
    chosen = [folder for folder in folders if canonicalize_name(folder) in pins]
    archive = _git(database, "archive", "--format=tar", commit, "LICENSE", *(f"vulns/{f}" for f in chosen))
    records: dict[str, list[dict[str, Any]]] = {}
    license_text = b""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            content = tar.extractfile(member) if member.isfile() else None
            text = content.read() if content is not None else b""
            parts = Path(member.name).parts
            if parts == ("LICENSE",):
                license_text = text
            elif len(parts) == 3 and parts[2].endswith((".yaml", ".json")):
                for record in parse_osv(text.decode("utf-8"), Path(member.name).suffix):
                    kept = {key: record[key] for key in RECORD_FIELDS if key in record}
                    records.setdefault(canonicalize_name(parts[1]), []).append(kept)
    if not license_text or not records:
        raise RefreshError(f"{database} at {commit[:12]} has no LICENSE or no records for the pins under vulns/")
    manifest = {
        "source": {"repository": repository, "commit": commit, "commit_date": committed},
        "license": "CC-BY-4.0 (see LICENSE); the database's records, trimmed to the fields listed",
        "fields": list(RECORD_FIELDS),
        "refresh": "make advisories (scripts/refresh_advisories.py)",
        "records": sum(len(kept) for kept in records.values()),
        "packages": pins,
    }
    fresh = snapshot.with_name(snapshot.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    (fresh / "vulns").mkdir(parents=True)
    (fresh / "LICENSE").write_bytes(license_text.rstrip() + b"\n")  # as the end-of-file hook wants it
    for name, kept in records.items():
        lines = (json.dumps(record, ensure_ascii=False) for record in sorted(kept, key=lambda r: str(r["id"])))
        (fresh / "vulns" / f"{name}.json").write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    (fresh / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    stale = snapshot.with_name(snapshot.name + ".old")
    shutil.rmtree(stale, ignore_errors=True)
    if snapshot.exists():
        snapshot.rename(stale)
    fresh.rename(snapshot)
    shutil.rmtree(stale, ignore_errors=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="database", type=Path, help="a clone or bare git dir of the database")
    parser.add_argument("--url", default=UPSTREAM, help=f"what to clone without --from (default {UPSTREAM})")
    parser.add_argument(
        "--repository", help="what the --from copy is a copy of, for SOURCE.json (default: its origin remote)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        database, repository = args.database, args.repository
        try:
            if database is None:
                database, repository = Path(scratch) / "advisory-database.git", repository or args.url
                print(f"advisories: cloning {args.url} (shallow)", flush=True)
                _git(Path(scratch), "clone", "--quiet", "--bare", "--depth", "1", args.url, str(database))
            manifest = build_snapshot(database, repository)
        except RefreshError as exc:
            print(f"advisories NOT refreshed: {exc}")
            return 2
    source = manifest["source"]
    print(
        f"advisories: {manifest['records']} records for {len(manifest['packages'])} pinned packages from "
        f"{source['repository']} at {source['commit'][:12]} ({source['commit_date']}) in {SNAPSHOT.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
