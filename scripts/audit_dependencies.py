"""Dependency audit of every pinned package: ``make audit`` (part of ``make test``, hence of CI).

``constraints.txt`` is the whole resolved environment (``pip freeze``), so auditing it checks
exactly what is installed, without installing anything. Advisories listed in
``.ci/audit-known.txt`` (id, then why it is accepted) are reported and tolerated; any other
finding fails.

Where the advisories come from, in order:

1. ``--advisory-db DIR`` (or ``CHURNOPS_ADVISORY_DB``): a local copy of an OSV-format advisory
   database, such as a checkout of https://github.com/pypa/advisory-database (its ``vulns/``
   tree). For machines that reach no vulnerability service; the audit is only as recent as the copy,
   so it prints the newest advisory date it saw.
2. pip-audit 2.10 against OSV (api.osv.dev) or PyPI's per-release JSON API.
3. Neither: the audit says so and passes, since a network outage is not a finding (CI prints the
   line, so it cannot go unseen).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDIT_VENV = ROOT / ".venv-audit"
PIP_AUDIT = "pip-audit==2.10.1"
KNOWN = ROOT / ".ci" / "audit-known.txt"
CONSTRAINTS = ROOT / "constraints.txt"
SERVICES = {  # pip-audit's name → a request that answers 200 when the service is usable from here
    "osv": urllib.request.Request(
        "https://api.osv.dev/v1/query",
        method="POST",
        headers={"Content-Type": "application/json"},
        data=b'{"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "3.1.2"}',
    ),
    "pypi": urllib.request.Request("https://pypi.org/pypi/jinja2/3.1.2/json"),
}


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


def offline_findings(advisory_db: Path, pins: dict[str, str]) -> tuple[list[Finding], int, str]:
    """Check ``pins`` against an OSV-format database on disk.

    Returns the findings, how many advisories were read, and the newest ``modified`` date seen
    (how recent the copy is)."""
    import yaml
    from packaging.utils import canonicalize_name

    root = advisory_db / "vulns" if (advisory_db / "vulns").is_dir() else advisory_db
    records: dict[str, list[Path]] = {}  # folder names are not always canonical ("Jinja2"): keyed by canonical name
    for path in sorted([*root.glob("*/*.yaml"), *root.glob("*/*.json")]):
        records.setdefault(canonicalize_name(path.parent.name), []).append(path)
    if not records:
        raise ValueError(
            f"{advisory_db} holds no advisories (package folders of OSV .yaml/.json records); "
            "point it at a checkout of pypa/advisory-database or its vulns/ folder"
        )
    findings, read, newest = [], 0, ""
    for name, version in sorted(pins.items()):
        for path in records.get(name, ()):
            record = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML
            read += 1
            newest = max(newest, str(record.get("modified", "")))
            if record.get("withdrawn"):
                continue
            for affected in record.get("affected") or ():
                package = affected.get("package") or {}
                if canonicalize_name(str(package.get("name", ""))) != name or not _affects(affected, version):
                    continue
                summary = " ".join(str(record.get("summary") or record.get("details", "")).split())[:160]
                findings.append(
                    Finding(
                        name,
                        version,
                        str(record["id"]),
                        tuple(record.get("aliases") or ()),
                        _fixed_versions(affected),
                        summary,
                    )
                )
                break
    return findings, read, newest


def offline_audit(advisory_db: Path, constraints: Path = CONSTRAINTS, known: Path = KNOWN) -> int:
    if not advisory_db.is_dir():
        print(f"dependency audit FAILED: advisory database {advisory_db} is not a directory")
        return 2
    pins = pinned_packages(constraints)
    try:
        findings, read, newest = offline_findings(advisory_db, pins)
    except ValueError as exc:
        print(f"dependency audit FAILED: {exc}")
        return 2
    accepted = set(known_advisories(known))
    print(
        f"dependency audit (offline, {advisory_db}): {len(pins)} pins, {read} advisories on them read "
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
    command = [
        str(tool),
        "-r",
        str(constraints),
        "--no-deps",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--vulnerability-service",
        service,
        *ignored,
    ]
    print(f"dependency audit ({service}): {' '.join(command[1:])}", flush=True)
    return subprocess.run(command).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--advisory-db",
        type=Path,
        default=os.environ.get("CHURNOPS_ADVISORY_DB") or None,
        help="local OSV-format advisory database (e.g. a pypa/advisory-database checkout)",
    )
    args = parser.parse_args(argv)
    if args.advisory_db is not None:
        return offline_audit(args.advisory_db)
    service, why_not = reachable_service()
    if service is None:
        print(
            f"dependency audit SKIPPED: no vulnerability service answers ({'; '.join(why_not)}); "
            "set CHURNOPS_ADVISORY_DB to a pypa/advisory-database checkout to audit offline"
        )
        return 0
    return online_audit(service)


if __name__ == "__main__":
    sys.exit(main())
