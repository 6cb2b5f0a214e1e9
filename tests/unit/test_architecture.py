"""The package's layers: imports point one way, only through curated names, and only orchestration imports Airflow.

Every ``import`` in ``include/churnops`` is read from the source (function-local and
``TYPE_CHECKING`` imports included), so a lazy import against the order fails as surely as one
at the top of a module.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "include" / "churnops"

# The loop from the bottom up: a unit may import units of its own rank or below, never above.
RANK = {
    "config": 0,
    "errors": 0,
    "days": 1,
    "faults": 1,
    "processes": 1,
    "data": 2,
    "features": 3,
    "modeling": 4,
    "tracking": 5,
    "training": 6,
    "monitoring": 6,
    "retraining": 7,
    "orchestration": 8,
    "devtools": 8.5,
    "serving": 8.7,
    "cli": 9,
    "__init__": 9,
}
# Units that stay apart: the training pipeline and daily monitoring share only what lies below them;
# the prediction service reads the registry (tracking) and the model's code, never the loop's steps.
APART = [{"training", "monitoring"}] + [
    {"serving", unit} for unit in ("training", "monitoring", "retraining", "orchestration", "devtools")
]
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


@dataclass(frozen=True)
class Import:
    module: Path
    line: int
    target: str  # dotted module imported from
    names: tuple[str, ...]  # names imported from it (empty for "import x")

    def __str__(self) -> str:
        where = f"{self.module.relative_to(ROOT)}:{self.line}"
        return (
            f"{where}: from {self.target} import {', '.join(self.names)}" if self.names else f"{where}: {self.target}"
        )


def unit_of(path: Path) -> str:
    """The layer unit a file belongs to: its subpackage, or its own name for a top-level module."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[Import]:
    found = []
    package = ""
    if path.is_relative_to(PACKAGE):
        package = dotted(path) if path.name == "__init__.py" else dotted(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                )
            found.append(Import(path, node.lineno, base, tuple(a.name for a in node.names)))
    return found


LIBRARY = sorted(PACKAGE.rglob("*.py"))
ALL_IMPORTS = [imp for path in LIBRARY for imp in imports(path)]


def churnops_unit(target: str, names: tuple[str, ...]) -> list[str]:
    """The units an import reaches: ``from churnops import training`` reaches ``training``."""
    parts = target.split(".")
    if parts[0] != "churnops":
        return []
    if len(parts) > 1:
        return [parts[1]]
    return [name for name in names if name in RANK] or ["__init__"]


def test_every_module_has_a_rank():
    assert {unit_of(path) for path in LIBRARY} <= set(RANK), "add the new module or subpackage to RANK"


def layer_violations(found: list[Import]) -> list[str]:
    wrong = []
    for imp in found:
        own = unit_of(imp.module)
        for unit in churnops_unit(imp.target, imp.names):
            if unit == own:
                continue
            if RANK[unit] > RANK[own] or any({own, unit} == pair for pair in APART):
                wrong.append(f"{imp}  ({own} must not import {unit})")
    return wrong


def curation_violations(found: list[Import]) -> list[str]:
    """Imports from another subpackage of names it does not list in its ``__all__`` (or of private modules)."""
    wrong = []
    for imp in found:
        parts = imp.target.split(".")
        if parts[0] != "churnops" or len(parts) < 2 or parts[1] == unit_of(imp.module) or parts[1] not in SUBPACKAGES:
            continue
        if any(part.startswith("_") for part in parts[2:]):
            wrong.append(f"{imp}  (a private module)")
            continue
        # orchestration's tasks and variables import Airflow or retraining, so its package does not
        # re-export them; what they offer is their own __all__.
        offered = (
            set(importlib.import_module(imp.target).__all__)
            if parts[2:] in (["tasks"], ["variables"])
            else (public_names(parts[1]))
        )
        refused = [name for name in imp.names if name.startswith("_") or name not in offered]
        if refused:
            wrong.append(f"{imp}  (not offered by churnops.{parts[1]}: {refused})")
    return wrong


def public_names(subpackage: str) -> set[str]:
    return set(importlib.import_module(f"churnops.{subpackage}").__all__)


def test_imports_point_down_the_loop():
    wrong = layer_violations(ALL_IMPORTS)
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_other_units_import_only_curated_public_names():
    wrong = curation_violations(ALL_IMPORTS)
    assert not wrong, "imports of names a subpackage does not offer:\n" + "\n".join(wrong)


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_each_subpackage_curates_what_others_may_import(subpackage):
    package = importlib.import_module(f"churnops.{subpackage}")
    assert package.__doc__, f"churnops.{subpackage} says what it holds"
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert not missing, f"churnops.{subpackage}.__all__ names what it lacks: {missing}"


def test_only_orchestration_imports_airflow():
    wrong = [
        str(imp)
        for imp in ALL_IMPORTS
        if imp.target.split(".")[0] == "airflow" and unit_of(imp.module) != "orchestration"
    ]
    assert not wrong, "Airflow imported outside churnops.orchestration:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "target", "names", "rule"),
    [
        ("tracking/runs.py", "churnops.orchestration", ("publish_mlflow_run",), layer_violations),  # upwards
        ("monitoring/steps.py", "churnops.training", ("run_training",), layer_violations),  # between peers
        ("data/storage.py", "churnops", ("training",), layer_violations),  # through the top package
        ("retraining/steps.py", "churnops.training.run", ("training_step",), lambda f: []),  # allowed
        ("retraining/steps.py", "churnops.training.run", ("_private",), curation_violations),
        ("retraining/steps.py", "churnops.monitoring.scoring", ("SCORE_CHUNK_ROWS",), curation_violations),
        ("cli.py", "churnops.training", ("not_offered",), curation_violations),
    ],
)
def test_the_rules_refuse_what_they_exist_to_stop(module, target, names, rule):
    """Each rule fails on the kind of import it exists to stop, so a green run means something."""
    probe = Import(PACKAGE / module, 1, target, names)
    refused = rule([probe])
    assert refused if rule in (layer_violations, curation_violations) else not refused


def test_function_local_imports_are_read_too(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from churnops.training.steps import _hidden\n")
    assert [(i.target, i.names) for i in imports(module)] == [("churnops.training.steps", ("_hidden",))]
