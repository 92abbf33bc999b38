"""An instance's stored state, packed: SpiffWorkflow's conversion of the workflow, written in a quarter of
its size, and read back to exactly that conversion.

SpiffWorkflow converts a workflow to one dictionary per task, keyed by the task's UUID and naming its parent
and children by theirs, with every field written even when it holds its default. On the shipped models that
is ~28 kB a directive, three quarters of it UUIDs, field names and defaults. Packed:

- every task UUID is written once, all of them in `ids` (16 bytes each, base64), and referred to elsewhere
  by its position: the string `"~N"` wherever the UUID was a value or a key (a text of the process data
  that itself begins with `~` is written with one more `~` in front, so nothing else can be mistaken for
  a reference);
- a task's data change (`delta`) that other tasks share (the same deletions of the process data, written
  on every task that leaves a sub-process or a branch) is written once, in `deltas`, and named by position;
- each workflow's tasks are a list, in the order the conversion gave them (parents before children: a
  task's data is stored as its change from its parent's), of `[task_spec, state, children,
  last_state_change]`, plus a mapping of the fields that differ from their defaults; a task's id is its
  position (after the workflow's `offset`) and its parent is found from the children.

A state without `format` is SpiffWorkflow's own conversion, as Tansiq stored it before (issue 23): it is
read as it is. This module knows nothing of SpiffWorkflow beyond the shape of that dictionary.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

FORMAT = 2
_REFERENCE, _ESCAPE = "~", "~~"
_EMPTY_DELTA: dict[str, Any] = {"updates": {}, "deletions": []}
# A task's fields with their defaults (omitted when equal), and the short names they are packed under.
_DEFAULTS: dict[str, Any] = {"triggered": False, "internal_data": {}, "data": {}, "delta": _EMPTY_DELTA,
                             "typename": "Task"}
_SHORT = {"triggered": "t", "internal_data": "i", "data": "d", "delta": "D", "typename": "y"}
_FRESH: dict[str, Callable[[], Any]] = {"triggered": lambda: False, "internal_data": dict, "data": dict,
          "delta": lambda: {"updates": {}, "deletions": []}, "typename": lambda: "Task"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TASK_FIELDS = {"id", "parent", "children", "last_state_change", "state", "task_spec", *_DEFAULTS}


def is_packed(state: dict[str, Any]) -> bool:
    return state.get("format") == FORMAT


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """The packed form of SpiffWorkflow's conversion of a workflow (its specs left out)."""
    workflows = [state, *state.get("subprocesses", {}).values()]
    ids = [task_id for workflow in workflows for task_id in workflow.get("tasks", {})]
    tasks = [task for workflow in workflows for task in workflow.get("tasks", {}).values()]
    if any(not _is_uuid(task_id) for task_id in ids) or any(task.keys() - _TASK_FIELDS for task in tasks):
        return state  # not a shape this codec knows (a newer SpiffWorkflow's?): kept as it is, and still read
    index = {task_id: position for position, task_id in enumerate(ids)}
    deltas = _Shared()
    packed = _pack_workflow(state, index, deltas, offset=0)
    offset = len(state.get("tasks", {}))
    subprocesses = {}
    for key, workflow in state.get("subprocesses", {}).items():
        subprocesses[_pack_value(key, index)] = _pack_workflow(workflow, index, deltas, offset)
        offset += len(workflow.get("tasks", {}))
    packed["subprocesses"] = subprocesses
    packed["format"] = FORMAT
    packed["deltas"] = deltas.values
    packed["ids"] = base64.b64encode(b"".join(bytes.fromhex(task_id.replace("-", "")) for task_id in ids)).decode()
    return packed


def unpack(stored: dict[str, Any]) -> dict[str, Any]:
    """SpiffWorkflow's conversion again, key for key; a state stored unpacked is returned as it is."""
    if not is_packed(stored):
        return stored
    digits = base64.b64decode(stored["ids"]).hex()
    ids = [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in
           (digits[at:at + 32] for at in range(0, len(digits), 32))]
    deltas = stored.get("deltas", [])  # unpacked for each task that names one: each its own copy
    own = {k: v for k, v in stored.items() if k not in ("format", "ids", "subprocesses", "deltas")}
    state = _unpack_workflow(own, ids, deltas)
    state["subprocesses"] = {_unpack_value(key, ids): _unpack_workflow(workflow, ids, deltas)
                             for key, workflow in stored.get("subprocesses", {}).items()}
    return state


class _Shared:
    """Values written once and named by their position."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._positions: dict[str, int] = {}

    def position(self, value: Any) -> int:
        key = repr(value)  # equal values written in another key order are kept twice: harmless
        if key not in self._positions:
            self._positions[key] = len(self.values)
            self.values.append(value)
        return self._positions[key]


# --- workflows and tasks --------------------------------------------------------------------------------

def _pack_workflow(workflow: dict[str, Any], index: dict[str, int], deltas: _Shared, offset: int) -> dict[str, Any]:
    packed = {key: _pack_value(value, index) for key, value in workflow.items() if key not in ("tasks", "subprocesses")}
    packed["offset"] = offset
    packed["tasks"] = [_pack_task(task, index, deltas) for task in workflow.get("tasks", {}).values()]
    return packed


def _pack_task(task: dict[str, Any], index: dict[str, int], deltas: _Shared) -> list[Any]:
    packed: list[Any] = [task["task_spec"], task["state"], [index[child] for child in task["children"]],
                         task["last_state_change"]]
    extras = {_SHORT[name]: _pack_value(task[name], index) for name, default in _DEFAULTS.items()
              if name in task and task[name] != default}
    extras.update({_SHORT[name]: None for name in _DEFAULTS if name not in task})  # absent, not defaulted
    if extras.get("D") is not None:
        extras["D"] = deltas.position(extras["D"])
    if extras:
        packed.append(extras)
    return packed


def _unpack_workflow(packed: dict[str, Any], ids: list[str], deltas: list[Any]) -> dict[str, Any]:
    offset = packed["offset"]
    workflow = {key: _unpack_value(value, ids) for key, value in packed.items() if key not in ("tasks", "offset")}
    parents: dict[int, str] = {}
    for position, task in enumerate(packed["tasks"]):
        for child in task[2]:
            parents[child] = ids[offset + position]
    tasks = {}
    for position, task in enumerate(packed["tasks"]):
        task_id = ids[offset + position]
        tasks[task_id] = _unpack_task(task, task_id, parents.get(offset + position), ids, deltas)
    workflow["tasks"] = tasks
    return workflow


def _unpack_task(packed: list[Any], task_id: str, parent: str | None, ids: list[str],
                 deltas: list[Any]) -> dict[str, Any]:
    spec, state, children, changed_at = packed[:4]
    extras = packed[4] if len(packed) > 4 else {}
    task: dict[str, Any] = {"id": task_id, "parent": parent, "children": [ids[child] for child in children],
                            "last_state_change": changed_at, "state": state, "task_spec": spec}
    for name in _DEFAULTS:
        short = _SHORT[name]
        if short not in extras:
            task[name] = _FRESH[name]()
        elif short == "D" and isinstance(extras[short], int):
            task[name] = _unpack_value(deltas[extras[short]], ids)
        elif extras[short] is not None:
            task[name] = _unpack_value(extras[short], ids)
    return task


# --- values: UUIDs to positions, texts beginning with ~ escaped -----------------------------------------

def _pack_value(value: Any, index: dict[str, int]) -> Any:
    if not value:
        return value
    if isinstance(value, str):
        if value in index:
            return f"{_REFERENCE}{index[value]}"
        return _REFERENCE + value if value.startswith(_REFERENCE) else value
    if isinstance(value, dict):
        return {_pack_value(key, index): _pack_value(item, index) for key, item in value.items()}
    if isinstance(value, list):
        return [_pack_value(item, index) for item in value]
    return value


def _unpack_value(value: Any, ids: list[str]) -> Any:
    if not value:
        return {} if isinstance(value, dict) else [] if isinstance(value, list) else value
    if isinstance(value, str):
        if value.startswith(_ESCAPE):
            return value[1:]
        if value.startswith(_REFERENCE):
            return ids[int(value[1:])]
        return value
    if isinstance(value, dict):
        return {_unpack_value(key, ids): _unpack_value(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_unpack_value(item, ids) for item in value]
    return value


def _is_uuid(text: object) -> bool:
    """The canonical form SpiffWorkflow writes (lower-case hex, 8-4-4-4-12)."""
    return isinstance(text, str) and _UUID.fullmatch(text) is not None
