"""An instance's stored state is SpiffWorkflow's own conversion of the workflow, less the specs.

`bpmn_runtime` converts the workflow with a converter that skips the specs (they come from the compiled
model on every load). These tests hold it against SpiffWorkflow's converter on the shipped models, sub-
processes and a multi-instance one included, at the start and after steps, and check a stored state
loads back to the same state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.bpmn import bpmn_runtime
from engine.bpmn.bpmn_runtime import Runtime, ServiceCall
from tests.conftest import SHIPPED_BPMN_DIR

SPIFF_DEFAULT = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
DATA = {
    "directive_id": 7, "reference": "1448/0007", "title": "تجهيز مراكز الاستقبال قبل وصول الحجاج",
    "kind": "decision", "priority": "normal", "responsible_entity": "housing",
    "supporting_entities": ["transport", "reception"], "addressed_entities": ["housing", "transport", "reception"],
    "deadline": "2027-05-20T21:00:00+00:00", "reminder_lead": "P1D", "grace": "P1D", "max_returns": 3,
}
FORM = {"summary": "تم التنفيذ", "evidence": [], "accepted": True, "approved": True, "decision": "approve",
        "note": "done"}


def _model(path: Path) -> bpmn_runtime.CompiledModel:
    document = etree.fromstring(path.read_bytes())
    process = document.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}process[@isExecutable='true']")
    tables = [etree.fromstring(table.read_bytes()) for table in sorted(path.parent.glob("*.dmn"))]  # its rules
    return bpmn_runtime.parse_model(document, path.name, process.get("id"), tables)


def _answer(call: ServiceCall) -> dict[str, Any]:
    return {"called": call.operation}


def _spiff_state(runtime: Runtime) -> dict[str, Any]:
    dct = SPIFF_DEFAULT.convert(runtime.workflow)
    del dct["spec"], dct["subprocess_specs"]
    return dct


def _as_json(value: Any) -> Any:
    """As stored: through JSON, in its order (a task's data is kept as its change from its parent's, so
    parents must come before their children, as they do in a stored state)."""
    return json.loads(json.dumps(value))


def _runs(model: bpmn_runtime.CompiledModel) -> list[Runtime]:
    """The runtime after its first run, then after each of its first three user steps (one at a time)."""
    runtime = Runtime.start(model, dict(DATA), _answer, 50, 2000)
    runtime.run_engine()
    seen = [runtime]
    for _ in range(3):
        views = runtime.ready_user_tasks()
        if not views:
            break
        runtime = Runtime.load(model, runtime.dump(), _answer, 50, 2000)
        runtime.complete_user_task(views[0].task_id, FORM)
        runtime.run_engine()
        seen.append(runtime)
    return seen


@pytest.mark.parametrize("path", sorted(SHIPPED_BPMN_DIR.glob("*.bpmn")), ids=lambda p: p.stem)
def test_the_state_is_spiffworkflows_conversion_without_the_specs(path):
    for runtime in _runs(_model(path)):
        assert _as_json(runtime.dump()) == _as_json(_spiff_state(runtime))


@pytest.mark.parametrize("path", sorted(SHIPPED_BPMN_DIR.glob("*.bpmn")), ids=lambda p: p.stem)
def test_a_stored_state_loads_back_to_the_same_state(path):
    model = _model(path)
    for runtime in _runs(model):
        stored = _as_json(runtime.dump())
        assert "spec" not in stored and "subprocess_specs" not in stored
        loaded = Runtime.load(model, stored, None, 50, 2000)
        assert stored == _as_json(runtime.dump()), "loading took something out of the stored state"
        assert _as_json(loaded.dump()) == stored
        assert _as_json(Runtime.load(model, stored, None, 50, 2000).dump()) == stored


# --- the packed form (engine.bpmn.state_codec, issue 23) -----------------------------------------------------

@pytest.mark.parametrize("path", sorted(SHIPPED_BPMN_DIR.glob("*.bpmn")), ids=lambda p: p.stem)
def test_the_packed_state_unpacks_to_spiffworkflows_conversion_in_a_third_of_its_size(path):
    from engine.bpmn import state_codec

    model = _model(path)
    for runtime in _runs(model):
        stored = _as_json(runtime.stored())
        full = _as_json(runtime.dump())
        assert state_codec.is_packed(stored) and state_codec.unpack(stored) == full
        assert len(json.dumps(stored, ensure_ascii=False)) * 3 < len(json.dumps(full, ensure_ascii=False)) * 1.2
        reordered = _as_json(_keys_reversed(stored))  # PostgreSQL's jsonb keeps no key order
        again = _as_json(Runtime.load(model, reordered, None, 50, 2000).dump())
        assert _deletions_sorted(again) == _deletions_sorted(full)  # (deletions follow the data's key order)


def _deletions_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: sorted(item) if key == "deletions" else _deletions_sorted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deletions_sorted(item) for item in value]
    return value


def _keys_reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _keys_reversed(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_keys_reversed(item) for item in value]
    return value


def test_process_data_that_looks_like_a_reference_comes_back_as_it_was():
    from engine.bpmn import state_codec

    model = _model(SHIPPED_BPMN_DIR / "directive-standard.bpmn")
    runtime = Runtime.start(model, dict(DATA, title="~3", note="~~x", tilde="~"), _answer, 50, 2000)
    runtime.run_engine()
    full = _as_json(runtime.dump())
    task_id = next(iter(full["tasks"]))
    full["data"]["a_step"] = task_id  # a UUID in the data is packed as a reference and comes back the same
    assert state_codec.unpack(_as_json(state_codec.pack(full))) == full


def test_a_state_stored_before_packing_is_still_read():
    model = _model(SHIPPED_BPMN_DIR / "directive-standard.bpmn")
    runtime = _runs(model)[1]
    old_form = _as_json(runtime.dump())
    loaded = Runtime.load(model, old_form, None, 50, 2000)
    assert _as_json(loaded.dump()) == old_form and loaded.ready_user_tasks()
