"""pip-audit of every pinned package: ``make audit`` (part of ``make test``, hence of CI).

``constraints.txt`` is the whole resolved environment (``pip freeze``), so auditing it with
``--no-deps --disable-pip`` checks exactly what is installed, without installing anything.
Advisories listed in ``.ci/audit-known.txt`` (id, then why it is accepted) are reported and
tolerated; any other finding fails. pip-audit needs a vulnerability service: OSV
(api.osv.dev) or PyPI's per-release JSON API. When neither answers, the audit says so and
passes, since a network outage is not a finding (CI prints the line, so it cannot go unseen).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDIT_VENV = ROOT / ".venv-audit"
PIP_AUDIT = "pip-audit==2.10.1"
KNOWN = ROOT / ".ci" / "audit-known.txt"
SERVICES = {  # pip-audit's name → a request that answers 200 when the service is usable from here
    "osv": urllib.request.Request(
        "https://api.osv.dev/v1/query", method="POST", headers={"Content-Type": "application/json"},
        data=b'{"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "3.1.2"}'),
    "pypi": urllib.request.Request("https://pypi.org/pypi/jinja2/3.1.2/json"),
}


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


def known_advisories() -> list[str]:
    if not KNOWN.is_file():
        return []
    return [line.split()[0] for line in KNOWN.read_text().splitlines() if line.strip() and not line.startswith("#")]


def main() -> int:
    service, why_not = reachable_service()
    if service is None:
        print(f"dependency audit SKIPPED: no vulnerability service answers ({'; '.join(why_not)})")
        return 0
    tool = AUDIT_VENV / "bin" / "pip-audit"
    if not tool.is_file():
        venv.create(AUDIT_VENV, with_pip=True)
        subprocess.run([str(AUDIT_VENV / "bin" / "pip"), "install", "--quiet", PIP_AUDIT], check=True)
    ignored = [arg for advisory in known_advisories() for arg in ("--ignore-vuln", advisory)]
    command = [str(tool), "-r", str(ROOT / "constraints.txt"), "--no-deps", "--disable-pip", "--progress-spinner",
               "off", "--vulnerability-service", service, *ignored]
    print(f"dependency audit ({service}): {' '.join(command[1:])}", flush=True)
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
