"""The dependency rules (engine/__init__.py, DESIGN.md) as import-linter contracts (pyproject.toml), run as
`make lint` runs them; and proof that they catch a cycle between packages, an upward import, web code in
the engine and a second module importing SpiffWorkflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.fixture
def copy_of_the_code(tmp_path: Path) -> Path:
    for package in ("engine", "api", "workflows"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_import(root: Path, module: str, statement: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{statement}  # noqa\n", encoding="utf-8")


@pytest.mark.parametrize(("module", "statement", "broken"), [
    # the clock reading the reports: an upward import and a cycle between two packages
    ("engine.foundation.clock", "from engine.reports import common",
     ["engine packages are layered: each imports only those below it BROKEN",
      "no import cycle between the engine's packages BROKEN"]),
    # the BPMN runtime asking the directives something, inside a function (still an import)
    ("engine.bpmn.process_models", "def _lazy():\n    from engine.directives import directives",
     ["engine packages are layered: each imports only those below it BROKEN"]),
    ("engine.work.instances", "import fastapi", ["engine imports no web, scheduler or adapter code BROKEN"]),
    ("engine.directives.steps", "import prefect", ["engine imports no web, scheduler or adapter code BROKEN"]),
    ("engine.work.instances", "from SpiffWorkflow.bpmn import BpmnWorkflow",
     ["one module imports SpiffWorkflow: the BPMN runtime BROKEN"]),
])
def test_a_wrong_import_breaks_a_contract(copy_of_the_code: Path, module: str, statement: str, broken: list[str]):
    _add_import(copy_of_the_code, module, statement)
    result = _lint_imports(copy_of_the_code)
    assert result.returncode != 0
    for line in broken:
        assert line in result.stdout, result.stdout
