"""Dependency audit of every pinned package: ``make audit`` (part of ``make test``, hence of CI).

``constraints.txt`` is the whole resolved environment (``pip freeze``), so auditing it checks
exactly what is installed, without installing anything. Advisories listed in
``.ci/audit-known.txt`` (id, then why it is accepted) are reported and tolerated; any other
finding fails.

Where the advisories come from, in order:

1. ``--advisory-db DIR`` (or ``CHURNOPS_ADVISORY_DB``): a local OSV-format advisory database,
   such as a checkout of https://github.com/pypa/advisory-database (its ``vulns/`` tree).
2. The repository's snapshot, ``.ci/advisories``: the PyPA records of every pinned package and
   ``SOURCE.json``, naming the database commit they were taken from and the packages they were
   taken for (``make advisories`` refreshes it). A pin the snapshot was not made for fails.
3. ``--online`` only: pip-audit 2.10 against OSV (api.osv.dev) or PyPI's per-release JSON API.

Every run prints where its advisories come from and their date. With ``--require`` (what
``make audit`` and CI pass) having no readable source fails the audit; without it, the audit
says why it skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AUDIT_VENV = ROOT / ".venv-audit"
PIP_AUDIT = "pip-audit==2.10.1"
KNOWN = ROOT / ".ci" / "audit-known.txt"
CONSTRAINTS = ROOT / "constraints.txt"
SNAPSHOT = ROOT / ".ci" / "advisories"
MANIFEST = "SOURCE.json"
SERVICES = {  # pip-audit's name → a request that answers 200 when the service is usable from here
    "osv": urllib.request.Request(
        "https://api.osv.dev/v1/query",
        method="POST",
        headers={"Content-Type": "application/json"},
        data=b'{"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "3.1.2"}',
    ),
    "pypi": urllib.request.Request("https://pypi.org/pypi/jinja2/3.1.2/json"),
}


class AdvisorySourceError(ValueError):
    """The advisory data cannot be read, or does not cover the pins: the audit cannot vouch for them."""


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    summary: str

    def ids(self) -> set[str]:
        return {self.advisory, *self.aliases}

    def __str__(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fix released"
        also = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.package}=={self.version}: {self.advisory}{also}, {fix}: {self.summary}"


@dataclass(frozen=True)
class AdvisoryData:
    """An advisory database on disk, its record files indexed by canonical package name.

    Attributes:
        files: each package's record files (a file holds one OSV record, or a list of them).
        origin: where the records come from and the date of that copy, for the audit's output.
        covers: the packages a snapshot was made for (its manifest); None for a whole database.
    """

    files: dict[str, list[Path]]
    origin: str
    covers: frozenset[str] | None = None


def parse_osv(text: str, suffix: str = ".yaml") -> list[dict[str, Any]]:
    """The OSV records in the text of a ``.yaml`` or ``.json`` file, dates left as written.

    Args:
        text: one OSV record, or a list of them.
        suffix: the file's suffix: ``.json`` is read as JSON (fast), anything else as YAML.

    Returns:
        The records.
    """
    if suffix == ".json":
        loaded = json.loads(text)
    else:
        import yaml

        class TextDates(yaml.SafeLoader):
            """SafeLoader without the timestamp type: OSV dates stay RFC 3339 text, as in OSV JSON."""

        TextDates.yaml_implicit_resolvers = {
            first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        loaded = yaml.load(text, Loader=TextDates)  # noqa: S506 (a SafeLoader)
    return loaded if isinstance(loaded, list) else [loaded]


def load_osv(path: Path) -> list[dict[str, Any]]:
    """The OSV records of a ``.yaml`` or ``.json`` file (see :func:`parse_osv`)."""
    return parse_osv(path.read_text(encoding="utf-8"), path.suffix)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _dated(repository: str, commit: str, committed: str) -> str:
    day = committed[:10]
    try:
        age = f", {(dt.datetime.now(dt.UTC).date() - dt.date.fromisoformat(day)).days} days old"
    except ValueError:
        age = ""
    return f"{repository} at {commit[:12]} (commit of {day or 'an unknown date'}{age})"


def _git_origin(db: Path) -> str | None:
    """The commit a checkout of the database stands at, when ``db`` is that checkout or its vulns/."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(db), *args], capture_output=True, text=True).stdout.strip()

    top = git("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() not in (db.resolve(), db.resolve().parent):
        return None  # not a checkout, or a folder inside some other repository
    commit, _, committed = git("log", "-1", "--format=%H %cI").partition(" ")
    return _dated(git("config", "--get", "remote.origin.url") or top, commit, committed) if commit else None


def read_advisory_data(db: Path) -> AdvisoryData:
    """Index an OSV advisory database: a pypa/advisory-database tree or a snapshot with a manifest.

    Args:
        db: the database folder, or its ``vulns/`` folder.

    Returns:
        Its record files by package, where they come from, and what a snapshot covers.

    Raises:
        AdvisorySourceError: no such folder, no records in it, or a manifest that does not match
            the records beside it.
    """
    from packaging.utils import canonicalize_name

    if not db.is_dir():
        raise AdvisorySourceError(f"advisory database {db} is not a directory")
    root = db / "vulns" if (db / "vulns").is_dir() else db
    files: dict[str, list[Path]] = {}  # folder names are not always canonical ("Jinja2")
    for path in sorted([*root.glob("*/*.yaml"), *root.glob("*/*.json")]):
        files.setdefault(canonicalize_name(path.parent.name), []).append(path)
    for path in sorted(root.glob("*.json")):  # a snapshot: one file of records per package
        files.setdefault(canonicalize_name(path.stem), []).append(path)
    if not files:
        raise AdvisorySourceError(
            f"{db} holds no advisories (package folders of OSV .yaml/.json records, or a snapshot's "
            "package files); point it at a checkout of pypa/advisory-database or its vulns/ folder"
        )
    manifest_path = next((folder / MANIFEST for folder in (db, root.parent) if (folder / MANIFEST).is_file()), None)
    if manifest_path is None:
        origin = _git_origin(db) or f"{_shown(db)} (no {MANIFEST}, no git history: dated by its newest record only)"
        return AdvisoryData(files, origin)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        held = sum(len(load_osv(path)) for paths in files.values() for path in paths)
        source, covers = manifest["source"], frozenset(manifest["packages"])
        origin = _dated(source["repository"], source["commit"], source["commit_date"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdvisorySourceError(f"{_shown(manifest_path)} or the records beside it cannot be read: {exc!r}") from exc
    if held != manifest.get("records"):
        raise AdvisorySourceError(
            f"{_shown(db)} holds {held} advisories where {MANIFEST} lists {manifest.get('records')}: "
            "an incomplete snapshot; refresh it with `make advisories`"
        )
    return AdvisoryData(files, f"{origin}, snapshot {_shown(db)}", covers)


def reachable_service() -> tuple[str | None, list[str]]:
    why_not = []
    for name, request in SERVICES.items():
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                if answer.status == 200:
                    return name, why_not
                why_not.append(f"{name}: HTTP {answer.status}")
        except (urllib.error.URLError, OSError) as exc:
            why_not.append(f"{name}: {getattr(exc, 'reason', exc)}")
    return None, why_not


def known_advisories(path: Path = KNOWN) -> list[str]:
    if not path.is_file():
        return []
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def pinned_packages(path: Path = CONSTRAINTS) -> dict[str, str]:
    """``name==version`` lines of a pip-freeze file, keyed by canonical name."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def _version(text: str):
    """A release, or None. NVD-imported PyPA records write bounds like ``3.0.3-NA``: their
    leading release number is what they mean."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        release = re.match(r"\d+(?:\.\d+)*", text)
        return Version(release.group()) if release else None


def _affects(affected: dict, version: str) -> bool:
    """Does one OSV ``affected`` entry cover ``version``? The OSV schema's evaluation: the explicit
    ``versions`` list, else any ECOSYSTEM range whose events, sorted, leave the version affected
    (``introduced`` opens, ``fixed`` closes at, ``last_affected`` closes after, ``limit`` caps
    the whole range). A closing bound that cannot be read is ignored, so an unreadable advisory
    is reported rather than silently passed."""
    pinned = _version(version)
    listed = {str(v) for v in affected.get("versions") or ()}
    if version in listed or (pinned is not None and pinned in {_version(v) for v in listed} - {None}):
        return True
    if pinned is None:
        return False
    zero = _version("0")
    for span in affected.get("ranges") or ():
        if span.get("type") != "ECOSYSTEM":
            continue  # GIT ranges name commits, not releases
        events = []
        for event in span.get("events") or ():
            ((kind, text),) = event.items()
            bound = _version(str(text))
            if kind == "introduced":
                events.append((bound or zero, kind))
            elif bound is not None:
                events.append((bound, kind))
        limits = [bound for bound, kind in events if kind == "limit"]
        if limits and not any(pinned < limit for limit in limits):
            continue
        vulnerable = False
        for bound, kind in sorted(events, key=lambda event: event[0]):
            if kind == "introduced" and pinned >= bound:
                vulnerable = True
            elif (kind == "fixed" and pinned >= bound) or (kind == "last_affected" and pinned > bound):
                vulnerable = False
        if vulnerable:
            return True
    return False


def _fixed_versions(affected: dict) -> tuple[str, ...]:
    return tuple(
        str(event["fixed"])
        for span in affected.get("ranges") or ()
        if span.get("type") == "ECOSYSTEM"
        for event in span.get("events") or ()
        if "fixed" in event
    )


def findings_in(data: AdvisoryData, pins: dict[str, str]) -> tuple[list[Finding], int, str]:
    """Check ``pins`` against indexed advisory data.

    Args:
        data: the advisory database, as :func:`read_advisory_data` indexes it.
        pins: version by canonical package name.

    Returns:
        The findings, how many advisories on the pinned packages were read, and the newest
        ``modified`` date among them.
    """
    from packaging.utils import canonicalize_name

    findings, read, newest = [], 0, ""
    for name, version in sorted(pins.items()):
        for record in (record for path in data.files.get(name, ()) for record in load_osv(path)):
            read += 1
            newest = max(newest, str(record.get("modified", "")))
            if record.get("withdrawn"):
                continue
            for affected in record.get("affected") or ():
                package = affected.get("package") or {}
                if canonicalize_name(str(package.get("name", ""))) != name or not _affects(affected, version):
                    continue
                summary = (
                    record.get("summary") or record.get("details") or f"https://osv.dev/vulnerability/{record['id']}"
                )
                fixed_in = _fixed_versions(affected)
                aliases = tuple(record.get("aliases") or ())
                findings.append(
                    Finding(name, version, str(record["id"]), aliases, fixed_in, " ".join(str(summary).split())[:160])
                )
                break
    return findings, read, newest


def offline_findings(advisory_db: Path, pins: dict[str, str]) -> tuple[list[Finding], int, str]:
    """:func:`findings_in` a database folder (raises :class:`AdvisorySourceError` as
    :func:`read_advisory_data` does)."""
    return findings_in(read_advisory_data(advisory_db), pins)


def offline_audit(advisory_db: Path, constraints: Path = CONSTRAINTS, known: Path = KNOWN) -> int:
    """Audit the pins of ``constraints`` against an advisory database on disk, printing what it finds.

    Returns:
        0 when clean (or every finding is accepted in ``known``), 1 on findings, 2 when the data
        cannot be read or does not cover every pin.
    """
    try:
        data = read_advisory_data(advisory_db)
        print(f"dependency audit: advisories from {data.origin}")
        pins = pinned_packages(constraints)
        uncovered = sorted(set(pins) - data.covers) if data.covers is not None else []
        if uncovered:
            raise AdvisorySourceError(
                f"the snapshot was not made for {len(uncovered)} pinned package(s) ({', '.join(uncovered[:8])}"
                f"{', …' if len(uncovered) > 8 else ''}); refresh it with `make advisories`"
            )
        findings, read, newest = findings_in(data, pins)
    except AdvisorySourceError as exc:
        print(f"dependency audit FAILED: {exc}")
        return 2
    accepted = set(known_advisories(known))
    print(
        f"dependency audit (offline): {len(pins)} pins, {read} advisories on them read "
        f"(the newest modified {newest[:10] or 'never'}), {len(findings)} finding(s)"
    )
    failing = 0
    for finding in findings:
        tolerated = bool(finding.ids() & accepted)
        failing += not tolerated
        print(f"  {'known ' if tolerated else 'FINDING'} {finding}")
    return 1 if failing else 0


def online_audit(service: str, constraints: Path = CONSTRAINTS) -> int:
    tool = AUDIT_VENV / "bin" / "pip-audit"
    if not tool.is_file():
        venv.create(AUDIT_VENV, with_pip=True)
        subprocess.run([str(AUDIT_VENV / "bin" / "pip"), "install", "--quiet", PIP_AUDIT], check=True)
    ignored = [arg for advisory in known_advisories() for arg in ("--ignore-vuln", advisory)]
    command = [str(tool), "-r", str(constraints), "--no-deps", "--disable-pip", "--progress-spinner", "off"]
    command += ["--vulnerability-service", service, *ignored]
    today = dt.datetime.now(dt.UTC).date()
    print(f"dependency audit: advisories live from {service} on {today}: {' '.join(command[1:])}", flush=True)
    return subprocess.run(command).returncode


def _unaudited(reason: str, require: bool) -> int:
    if require:
        print(f"dependency audit FAILED: {reason}")
        return 2
    print(f"dependency audit SKIPPED: {reason}")
    return 0


def main(argv: list[str] | None = None, *, snapshot: Path = SNAPSHOT) -> int:
    """The command line (see the module docstring); ``snapshot`` is the repository's by default."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--advisory-db",
        type=Path,
        default=os.environ.get("CHURNOPS_ADVISORY_DB") or None,
        help="local OSV-format advisory database (a pypa/advisory-database checkout); "
        "default: $CHURNOPS_ADVISORY_DB, else the repository's snapshot",
    )
    source.add_argument("--online", action="store_true", help="ask OSV or PyPI through pip-audit instead")
    parser.add_argument("--require", action="store_true", help="fail, rather than skip, when no source can be read")
    args = parser.parse_args(argv)
    if args.online:
        service, why_not = reachable_service()
        if service is None:
            return _unaudited(f"no vulnerability service answers ({'; '.join(why_not)})", args.require)
        return online_audit(service)
    if args.advisory_db is None and not snapshot.exists():
        return _unaudited(
            f"no advisory data: no snapshot at {_shown(snapshot)} (`make advisories` makes it) "
            "and CHURNOPS_ADVISORY_DB is not set",
            args.require,
        )
    return offline_audit(args.advisory_db or snapshot)


if __name__ == "__main__":
    sys.exit(main())
