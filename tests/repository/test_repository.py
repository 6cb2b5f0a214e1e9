"""What the repository holds speaks of the project only: no folder of the machine a file was made on."""

from __future__ import annotations

import json
import re
import subprocess

from tests.helpers import ROOT

# A home or workspace folder of some machine (benchmark commands, results, notes): always absolute,
# never the project's own, so a clone elsewhere would read it as nonsense.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home|Users)/[\w.+-]+")


def tracked_text_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and not name.endswith((".png", ".tar.gz", ".db"))]


def test_no_tracked_file_names_a_folder_of_a_machine():
    found = []
    for name in tracked_text_files():
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}: {match.group(0)}" for match in MACHINE_PATH.finditer(text)]
    assert not found, "machine paths in committed files (use paths relative to the repository):\n" + "\n".join(found)


def test_the_pattern_finds_what_it_is_for():
    # Built from parts, so that this file does not hold what it looks for.
    assert MACHINE_PATH.search("--output " + "/".join(["", "work", "main", "bench", "RESULTS.md"]))
    assert MACHINE_PATH.search("cd " + "/".join(["", "root", "project"]))
    assert not MACHINE_PATH.search("--output bench/RESULTS.md and /opt/churnops/airflow_settings.yaml")


def test_the_commands_benchmark_results_record_name_no_absolute_path():
    # A recorded command is what a reader reruns: an absolute path in it (a scratch output folder,
    # say) names a folder of the machine the figures came from.
    found = []
    for name in tracked_text_files():
        if not name.startswith("bench/") or not name.endswith(".json"):
            continue
        recorded = json.loads((ROOT / name).read_text()).get("command")
        if isinstance(recorded, str):
            found += [f"{name}: {word}" for word in recorded.split() if word.startswith("/")]
    assert not found, "absolute paths in recorded benchmark commands:\n" + "\n".join(found)
