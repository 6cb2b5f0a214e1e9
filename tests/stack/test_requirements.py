"""Runtime and development dependencies are split, and the image carries the runtime set only.

``requirements.txt`` is what churnops runs on (the Dockerfile installs it and nothing else);
``requirements-dev.txt`` adds the test, lint and developer tools on top of it (``make install``);
``constraints.txt`` pins the resolved whole of both.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shlex
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT

# Tools that only tests, lint and type checks use: none may be in the image.
DEV_TOOLS = {
    "pytest",
    "pytest-xdist",
    "playwright",
    "ruff",
    "mypy",
    "types-pyyaml",
    "pre-commit",
    "pre-commit-hooks",
    "check-jsonschema",
}
RUNTIME_CODE = ("include", "dags", "plugins")


def _requirements(name: str) -> tuple[list[Requirement], list[str]]:
    """The requirements a file pins, and the files it includes with ``-r``."""
    pinned, included = [], []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            included.append(line[3:].strip())
        elif line:
            pinned.append(Requirement(line))
    return pinned, included


def test_requirements_txt_holds_no_test_or_lint_tool_and_dev_includes_it():
    runtime, runtime_includes = _requirements("requirements.txt")
    dev, dev_includes = _requirements("requirements-dev.txt")
    runtime_names = {canonicalize_name(r.name) for r in runtime}
    dev_names = {canonicalize_name(r.name) for r in dev}
    assert not runtime_includes
    assert not runtime_names & DEV_TOOLS, runtime_names & DEV_TOOLS
    assert dev_includes == ["requirements.txt"]
    assert DEV_TOOLS <= dev_names, DEV_TOOLS - dev_names
    assert not runtime_names & dev_names, "a package pinned in both files"
    # Every pin is exact, and constraints.txt agrees with it.
    constraints = {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([\w.-]+)==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    }
    for requirement in runtime + dev:
        (spec,) = requirement.specifier
        assert spec.operator == "==", requirement
        assert constraints.get(canonicalize_name(requirement.name)) == spec.version, requirement
    for extra_package in ("flask-wtf", "wtforms"):  # mlflow[auth], for the basic-auth app
        assert extra_package in constraints


def test_the_image_installs_requirements_txt_only_and_make_install_the_dev_set():
    instructions = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    installed: list[tuple[str, str]] = []  # (option, value) of every pip install in the image
    for line in instructions:
        for command in line.removeprefix("RUN ").split("&&"):
            words = shlex.split(command)
            if words[:2] != ["pip", "install"]:
                continue
            values = iter(words[2:])
            for word in values:
                if word in ("-r", "-c", "-e"):
                    installed.append((word, next(values)))
                elif not word.startswith("--"):
                    installed.append(("package", word))
    assert installed == [
        ("-r", "/opt/churnops/requirements.txt"),
        ("-c", "/opt/churnops/constraints.txt"),
        ("-e", "/opt/churnops"),
    ], installed
    copied = {word for line in instructions if line.startswith("COPY ") for word in line.split()}
    assert "requirements-dev.txt" not in copied and "tests" not in copied
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^\$\(BIN\)/churnops: ([^\n]*)\n((?:\t[^\n]*\n)+)", makefile, re.M)
    assert target, "no $(BIN)/churnops rule"
    assert {"requirements.txt", "requirements-dev.txt", "constraints.txt"} <= set(target.group(1).split())
    assert "pip install --quiet -r requirements-dev.txt -c constraints.txt" in target.group(2)
    constraints_rule = re.search(r"^constraints:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.M)
    assert constraints_rule and "install --quiet -r requirements-dev.txt" in constraints_rule.group(1)


def _runtime_closure() -> set[str]:
    """Every distribution requirements.txt brings in, walked through the installed metadata."""
    runtime, _ = _requirements("requirements.txt")
    walked: set[tuple[str, frozenset[str]]] = set()
    todo = [(r.name, frozenset(r.extras)) for r in runtime]
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in walked:
            continue
        walked.add((canonicalize_name(name), extras))
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:  # not installed here: nothing to walk
            continue
        for line in requires:
            requirement = Requirement(line)
            wanted = not requirement.marker or any(
                requirement.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                todo.append((requirement.name, frozenset(requirement.extras)))
    return {name for name, _ in walked}


def _imported_top_level_modules(folder: Path) -> set[str]:
    modules = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules


def test_runtime_code_imports_only_what_requirements_txt_installs():
    closure = _runtime_closure()
    distributions = importlib.metadata.packages_distributions()
    local = {"churnops", "tests"} | {p.stem for folder in RUNTIME_CODE for p in (ROOT / folder).glob("*.py")}
    outside = {}
    for folder in RUNTIME_CODE:
        for module in _imported_top_level_modules(ROOT / folder) - set(sys.stdlib_module_names) - local:
            owners = {canonicalize_name(d) for d in distributions.get(module, [])}
            assert owners, f"{folder}/ imports {module}, which no installed distribution provides"
            if not owners & closure:
                outside[module] = sorted(owners)
    assert not outside, f"imported by include/, dags/ or plugins/ but not in the image: {outside}"
