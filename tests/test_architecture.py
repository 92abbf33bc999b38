"""The dependency rules of DESIGN.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).parent.parent / "engine"
FORBIDDEN_IN_ENGINE = ("api", "workflows", "fastapi", "starlette", "prefect")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_imports_no_web_or_prefect_code():
    offenders = {
        str(path.relative_to(ENGINE)): sorted(_imports(path).intersection(FORBIDDEN_IN_ENGINE))
        for path in ENGINE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_one_engine_module_imports_spiffworkflow():
    importers = sorted(str(p.relative_to(ENGINE)) for p in ENGINE.rglob("*.py") if "SpiffWorkflow" in _imports(p))
    assert importers == ["bpmn_runtime.py"]
