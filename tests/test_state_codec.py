"""The packed state (engine.bpmn.state_codec): exact times, values given out as their own copies, shapes it
does not know kept as they are, and format-2 states stored by the code before read and run on (the unpacked
form of before issue 23: tests/test_runtime_state.py).

tests/states/format-2.json holds, per shipped model, the state launched and after its first step as the
code before format 3 stored it (made with that code, from the state tests' directive and answers).
"""

from __future__ import annotations

import copy
import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest

from engine.bpmn import state_codec
from engine.bpmn.bpmn_runtime import Runtime
from tests.conftest import SHIPPED_BPMN_DIR
from tests.test_runtime_state import FORM, _answer, _as_json, _keys_reversed, _model, _runs

FORMAT_2 = json.loads((Path(__file__).parent / "states" / "format-2.json").read_text())


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def _tasks(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [task for workflow in (state, *state["subprocesses"].values()) for task in workflow["tasks"].values()]


def _standard_state() -> dict[str, Any]:
    return _as_json(_runs(_model(SHIPPED_BPMN_DIR / "directive-standard.bpmn"))[1].dump())


# --- format 2 and the unpacked form, as stored before --------------------------------------------------------

@pytest.mark.parametrize("stem", sorted(FORMAT_2))
def test_a_format_2_state_stored_by_the_code_before_loads_and_runs_on(stem):
    model = _model(SHIPPED_BPMN_DIR / f"{stem}.bpmn")
    for moment, stored in FORMAT_2[stem].items():
        assert stored["format"] == 2 and state_codec.is_packed(stored)
        unpacked = state_codec.unpack(copy.deepcopy(stored))
        loaded = Runtime.load(model, copy.deepcopy(stored), _answer, 50, 2000)
        assert _as_json(loaded.dump()) == unpacked, moment
        again = _as_json(loaded.stored())
        assert again["format"] == state_codec.FORMAT and state_codec.unpack(again) == unpacked
        views = loaded.ready_user_tasks()
        assert views, moment
        loaded.complete_user_task(views[0].task_id, dict(FORM))
        loaded.run_engine()
        stepped = _as_json(loaded.stored())
        assert state_codec.unpack(stepped) == _as_json(loaded.dump()) != unpacked
        assert _as_json(Runtime.load(model, stepped, None, 50, 2000).dump()) == _as_json(loaded.dump())


def test_a_format_2_state_gives_back_its_uuids_and_its_escaped_texts():
    stored = copy.deepcopy(FORMAT_2["directive-standard"]["after step 1"])
    stored["data"]["references"] = ["~0", "~~x", "~~"]  # as format 2 wrote a task's UUID, "~x" and "~"
    unpacked = state_codec.unpack(stored)
    assert unpacked["data"]["references"] == [next(iter(unpacked["tasks"])), "~x", "~"]
    assert unpacked["root"] == next(iter(unpacked["tasks"]))


# --- format 3 ------------------------------------------------------------------------------------------------

def test_the_standard_directive_after_its_acknowledgement_is_stored_in_less_than_8000_bytes():
    stored = state_codec.pack(_standard_state())
    assert len(json.dumps(stored, ensure_ascii=False).encode()) < 8000


def test_times_come_back_bit_for_bit():
    state = _standard_state()
    times = random.Random(23)
    for task in _tasks(state):  # a day's spread, then across a power of two
        task["last_state_change"] = 1796698915.0 + times.uniform(-86400.0, 86400.0)
    stored = _as_json(state_codec.pack(state))
    assert "clock" in stored
    back = state_codec.unpack(stored)
    assert [_bits(task["last_state_change"]) for task in _tasks(back)] == \
        [_bits(task["last_state_change"]) for task in _tasks(state)]
    assert back == state


@pytest.mark.parametrize("odd", [7, None, -1.5, float("nan"), float("inf"), 2.0 ** 60, 1e-300, 0.0])
def test_a_time_the_clock_cannot_hold_exactly_keeps_every_time_as_it_was(odd):
    state = _standard_state()
    _tasks(state)[3]["last_state_change"] = odd
    stored = state_codec.pack(state)
    back = state_codec.unpack(json.loads(json.dumps(stored)))
    if odd != odd:  # NaN: not equal to itself, so compare its text
        assert json.dumps(back, sort_keys=True) == json.dumps(state, sort_keys=True)
    else:
        assert back == state
    assert stored["format"] == state_codec.FORMAT and "clock" not in stored


def test_a_value_several_tasks_name_is_given_to_each_as_its_own_copy():
    state = _standard_state()
    stored = _as_json(state_codec.pack(state))
    assert len(stored["values"]) < sum(1 for task in _tasks(state) if task["delta"] != state_codec._EMPTY_DELTA)
    containers: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, (dict, list)):
            containers.append(id(value))
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)

    walk(state_codec.unpack(stored))
    assert len(containers) == len(set(containers))


def test_sub_processes_and_keys_in_any_order_unpack_the_same():
    model = _model(SHIPPED_BPMN_DIR / "directive-multi-entity.bpmn")
    for runtime in _runs(model):
        full = _as_json(runtime.dump())
        stored = _as_json(runtime.stored())
        assert state_codec.unpack(_as_json(_keys_reversed(stored))) == full


def test_true_and_one_are_not_taken_for_the_same_value():
    state = _standard_state()
    first, second = _tasks(state)[1:3]
    first["internal_data"], second["internal_data"] = {"x": True}, {"x": 1}
    back = state_codec.unpack(_as_json(state_codec.pack(state)))
    assert json.dumps(back, sort_keys=True) == json.dumps(state, sort_keys=True)


def test_a_task_without_some_fields_comes_back_without_them():
    state = _standard_state()
    task = _tasks(state)[2]
    del task["delta"], task["typename"]
    task["triggered"] = True
    stored = _as_json(state_codec.pack(state))
    assert stored["format"] == state_codec.FORMAT and state_codec.unpack(stored) == state


@pytest.mark.parametrize("change", ["extra field", "no id", "short id", "upper-case id", "triggered null",
                                    "a field of the packing", "id not its key", "parent not naming it"])
def test_a_shape_the_codec_does_not_know_is_kept_as_it_is(change):
    state = _standard_state()
    task_id, task = next(iter(state["tasks"].items()))
    if change == "extra field":
        task["newer"] = 1
    elif change == "no id":
        del task["id"]
    elif change == "short id":
        state["tasks"] = {("x" if key == task_id else key): value for key, value in state["tasks"].items()}
    elif change == "upper-case id":
        state["tasks"] = {(key.upper() if key == task_id else key): value for key, value in state["tasks"].items()}
    elif change == "triggered null":
        task["triggered"] = None
    elif change == "id not its key":
        task["id"] = list(state["tasks"])[1]
    elif change == "parent not naming it":
        list(state["tasks"].values())[2]["parent"] = task_id
    else:
        state["values"] = []
    before = copy.deepcopy(state)
    assert state_codec.pack(state) is state and state == before
    assert state_codec.unpack(state) is state
