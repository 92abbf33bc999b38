"""An instance's stored state, packed: SpiffWorkflow's conversion of the workflow, written in a fifth to a
quarter of its size, and read back to exactly that conversion.

SpiffWorkflow converts a workflow to one dictionary per task, keyed by the task's UUID and naming its parent
and children by theirs, with every field written even when it holds its default. On the shipped models that
is ~30 kB a directive, three quarters of it UUIDs, field names, defaults and timestamps. Packed (format 3):

- every task UUID is written once, all of them in `ids` (16 bytes each, base64), and referred to by its
  position: the `children` of a task, a workflow's `root`, `last_task` and `parent_task_id`, and the keys of
  `subprocesses` (a text of digits);
- each workflow's tasks are a list, in the order the conversion gave them (parents before children: a
  task's data is stored as its change from its parent's), of `[task_spec, state, children,
  last_state_change]`, plus a mapping of the fields that differ from their defaults (`t` triggered, `i`
  internal_data, `d` data, `D` delta, `y` typename; a field the task lacks is `null`); a task's id is its
  position (after the workflow's `offset`) and its parent is found from the children;
- a task's `internal_data`, `data` and `delta` are written once in `values` and named by position: the
  same ones recur (the directive's data on each start task, the same deletions on every task that leaves a
  sub-process or a branch); each task that names one is given its own copy;
- `last_state_change` (SpiffWorkflow's `time.time()`, a float) is written as an integer: with `clock` =
  `[e, k0]`, a task's time is `k / 2**e`, its `k` being the previous task's `k` (in a workflow's first
  task, `k0`) plus the integer the task holds. `e` is 53 less the binary exponent of the smallest time, so
  every time is an integer `k` over `2**e`, and a float again exactly, bit for bit, while `k` has at most
  53 bits (all times between the same two powers of two: `time.time()` is between 2**30 and 2**31 from 2004
  to 2038); a state with a time that is not a positive finite float, or with times further apart, keeps
  its floats and has no `clock`.

The process data, internal data and other workflow fields are written as SpiffWorkflow gave them.

Format 2 (issue 23, the first packing) wrote the tasks this way but their times as floats and their data
inline (deltas alone shared, in `deltas`), and every UUID anywhere, even in the process data, as the
string `"~N"` (a text beginning with `~` with one more `~` in front); it is still read. A state without
`format` is SpiffWorkflow's own conversion, as Tansiq stored it before issue 23: it is read as it is.
This module knows nothing of SpiffWorkflow beyond the shape of that dictionary.
"""

from __future__ import annotations

import base64
import marshal
import math
import re
from itertools import accumulate, chain, pairwise
from typing import Any

FORMAT = 3
_READ = (2, 3)
_TASK_FIELDS = frozenset({"id", "parent", "children", "last_state_change", "state", "task_spec", "triggered",
                          "internal_data", "data", "delta", "typename"})
_REFERRING = ("root", "last_task", "parent_task_id")  # a workflow's fields that hold a task's id
_PACKED_ONLY = frozenset({"format", "ids", "subprocesses", "values", "clock"})
_EMPTY_DELTA: dict[str, Any] = {"updates": {}, "deletions": []}
_LONG = {"t": "triggered", "i": "internal_data", "d": "data", "D": "delta", "y": "typename"}
_SHARED = frozenset("idD")  # the fields written in `values`
_UUID_GROUPS = re.compile("(.{8})(.{4})(.{4})(.{4})(.{12})")  # a UUID's hex digits, 8-4-4-4-12
_BITS = 53  # a float's integers: exact up to 2**53
_MAX_EXPONENT = 900  # times below 2**-848 s: kept as floats (2.0**exponent overflows at 1024)


class _Unknown(Exception):
    """A shape this codec does not know."""


def is_packed(state: dict[str, Any]) -> bool:
    return state.get("format") in _READ


def pack(state: dict[str, Any]) -> dict[str, Any]:
    """The packed form of SpiffWorkflow's conversion of a workflow (its specs left out)."""
    workflows = [state, *state.get("subprocesses", {}).values()]
    ids = [task_id for workflow in workflows for task_id in workflow.get("tasks", {})]
    try:
        return _packed(state, workflows, ids)
    except (_Unknown, KeyError, TypeError, ValueError):
        return state  # not a shape this codec knows (a newer SpiffWorkflow's?): kept as it is, and still read


def unpack(stored: dict[str, Any]) -> dict[str, Any]:
    """SpiffWorkflow's conversion again, key for key; a state stored unpacked is returned as it is."""
    if stored.get("format") == 2:
        return _unpack_format_2(stored)
    if stored.get("format") != FORMAT:
        return stored
    ids = _decoded_ids(stored["ids"])
    clock = stored.get("clock")
    values = _Copies(stored["values"])
    own = {key: value for key, value in stored.items() if key not in _PACKED_ONLY}
    state = _unpack_workflow(own, ids, values, clock)
    state["subprocesses"] = {ids[int(key)]: _unpack_workflow(workflow, ids, values, clock)
                             for key, workflow in stored["subprocesses"].items()}
    return state


def _packed(state: dict[str, Any], workflows: list[dict[str, Any]], ids: list[str]) -> dict[str, Any]:
    if state.keys() & _PACKED_ONLY - {"subprocesses"} or any("offset" in workflow for workflow in workflows):
        raise _Unknown
    tasks = [task for workflow in workflows for task in workflow.get("tasks", {}).values()]
    if not _TASK_FIELDS.issuperset(chain.from_iterable(tasks)):
        raise _Unknown
    encoded = _encoded_ids(ids)
    index = {task_id: position for position, task_id in enumerate(ids)}
    clock = _clock([task["last_state_change"] for task in tasks])
    values = _Values()
    packed = _pack_workflow(state, index, values, clock, 0)
    offset, subprocesses = len(packed["tasks"]), {}
    for key, workflow in state.get("subprocesses", {}).items():
        subprocesses[str(index[key])] = _pack_workflow(workflow, index, values, clock, offset)
        offset += len(workflow.get("tasks", {}))
    packed.update(subprocesses=subprocesses, format=FORMAT, values=values.values, ids=encoded)
    if clock is not None:
        packed["clock"] = [clock[0], clock[1][0]]
    return packed


def _encoded_ids(ids: list[str]) -> str:
    """`ids` as 16 bytes each, base64, if they are UUIDs as SpiffWorkflow writes them (lower-case, 8-4-4-4-12)."""
    joined = "".join(ids)
    digits = joined.replace("-", "")
    dashed = all(joined[at::36] == "-" * len(ids) for at in (8, 13, 18, 23))
    if len(joined) != 36 * len(ids) or len(digits) != 32 * len(ids) or not dashed:
        raise _Unknown
    raw = bytes.fromhex(digits)
    if raw.hex() != digits:
        raise _Unknown
    return base64.b64encode(raw).decode()


def _decoded_ids(encoded: str) -> list[str]:
    return list(map("-".join, _UUID_GROUPS.findall(base64.b64decode(encoded).hex())))


def _clock(times: list[Any]) -> tuple[int, list[int]] | None:
    """The times as integers over `2**exponent`, `(exponent, integers)`, if that is exact (else None).

    A positive float is an integer of 53 bits over `2**(53 - its binary exponent)`; over the power of two of
    the smallest time, every time is an integer, exact as a float while it has no more than 53 bits."""
    if not times or any(type(value) is not float or not 0 < value < math.inf for value in times):
        return None
    exponent = _BITS - math.frexp(min(times))[1]
    if exponent > _MAX_EXPONENT or max(times) * 2.0 ** exponent >= 2 ** _BITS:
        return None
    scale = 2.0 ** exponent
    return exponent, [int(value * scale) for value in times]


class _Values:
    """Values written once and named by their position."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._positions: dict[bytes, int] = {}

    def position(self, value: Any) -> int:
        key = marshal.dumps(value, 0)  # exact (True is not 1), without references; another key order: kept twice
        position = self._positions.get(key)
        if position is None:
            position = self._positions[key] = len(self.values)
            self.values.append(value)
        return position


class _Copies:
    """The stored values, each given out as it is the first time and as a copy after (as JSON would)."""

    def __init__(self, values: list[Any]) -> None:
        self._values = values
        self._given: set[int] = set()
        self._written: dict[int, bytes] = {}  # what is given more than once, marshalled once (copies faster)

    def get(self, position: int) -> Any:
        if position not in self._given:
            self._given.add(position)
            return self._values[position]
        written = self._written.get(position)
        if written is None:
            written = self._written[position] = marshal.dumps(self._values[position])
        return marshal.loads(written)


# --- workflows and tasks --------------------------------------------------------------------------------

def _pack_workflow(workflow: dict[str, Any], index: dict[str, int], values: _Values,
                   clock: tuple[int, list[int]] | None, offset: int) -> dict[str, Any]:
    _check_tree(workflow.get("tasks", {}))
    tasks = list(workflow.get("tasks", {}).values())
    packed = {key: value for key, value in workflow.items() if key not in ("tasks", "subprocesses")}
    for key in _REFERRING:
        if packed.get(key) is not None:
            packed[key] = index[packed[key]]
    packed["offset"] = offset
    if clock is None:
        times = [task["last_state_change"] for task in tasks]
    else:  # each the difference from the one before, the first from the state's first (sub-processes: any order)
        integers = clock[1][offset:offset + len(tasks)]
        times = [later - earlier for earlier, later in pairwise([clock[1][0], *integers])]
    packed["tasks"] = [_pack_task(task, index, values, time) for task, time in zip(tasks, times, strict=True)]
    return packed


def _check_tree(tasks: dict[str, dict[str, Any]]) -> None:
    """Each task's id its key, and its parent the task of its workflow that names it a child (as unpacked)."""
    parents = {child: task_id for task_id, task in tasks.items() for child in task["children"]}
    if any(task["id"] != task_id or task["parent"] != parents.get(task_id) for task_id, task in tasks.items()):
        raise _Unknown


def _pack_task(task: dict[str, Any], index: dict[str, int], values: _Values, time: Any) -> list[Any]:
    if len(task) != len(_TASK_FIELDS):
        return _pack_partial_task(task, index, values, time)
    packed: list[Any] = [task["task_spec"], task["state"], list(map(index.__getitem__, task["children"])), time]
    extras = {}
    if task["triggered"] is not False:
        extras["t"] = _present(task, "triggered")
    if task["internal_data"] != {}:
        extras["i"] = values.position(task["internal_data"])
    if task["data"] != {}:
        extras["d"] = values.position(task["data"])
    if task["delta"] != _EMPTY_DELTA:
        extras["D"] = values.position(task["delta"])
    if task["typename"] != "Task":
        extras["y"] = _present(task, "typename")
    if extras:
        packed.append(extras)
    return packed


def _pack_partial_task(task: dict[str, Any], index: dict[str, int], values: _Values, time: Any) -> list[Any]:
    """A task that lacks some of the defaulted fields (a simple task has no `delta`), each written `null`."""
    full = {"triggered": False, "internal_data": {}, "data": {}, "delta": _EMPTY_DELTA, "typename": "Task", **task}
    if full.keys() != _TASK_FIELDS:
        raise _Unknown
    packed = _pack_task(full, index, values, time)
    if len(packed) == 4:
        packed.append({})
    packed[4].update({short: None for short, name in _LONG.items() if name not in task})
    return packed


def _present(task: dict[str, Any], name: str) -> Any:
    """A field written as it is, None standing for its absence (so it must not hold None)."""
    if name in task and task[name] is None:
        raise _Unknown
    return task.get(name)


def _unpack_workflow(packed: dict[str, Any], ids: list[str], values: _Copies,
                     clock: list[int] | None) -> dict[str, Any]:
    offset, tasks = packed["offset"], packed["tasks"]
    workflow = {key: value for key, value in packed.items() if key not in ("tasks", "offset")}
    for key in _REFERRING:
        if workflow.get(key) is not None:
            workflow[key] = ids[workflow[key]]
    own = ids[offset:offset + len(tasks)]
    unpacked = [{"id": task_id, "parent": None, "children": list(map(ids.__getitem__, task[2])),
                 "last_state_change": time, "state": task[1], "task_spec": task[0], "triggered": False,
                 "internal_data": {}, "data": {}, "delta": {"updates": {}, "deletions": []}, "typename": "Task"}
                for task_id, task, time in zip(own, tasks, _unpacked_times(tasks, clock), strict=True)]
    _fill(unpacked, tasks, offset, values)
    workflow["tasks"] = dict(zip(own, unpacked, strict=True))
    return workflow


def _unpacked_times(tasks: list[list[Any]], clock: list[int] | None) -> list[Any]:
    if clock is None:
        return [task[3] for task in tasks]
    scale = 2.0 ** -clock[0]
    integers = accumulate((task[3] for task in tasks), initial=clock[1])
    next(integers)  # the state's first time, from which the first task's is written
    return [integer * scale for integer in integers]


def _fill(unpacked: list[dict[str, Any]], tasks: list[list[Any]], offset: int, values: _Copies) -> None:
    """Each task's parent (a task of the same workflow that names it a child) and its fields not defaulted."""
    end = offset + len(tasks)
    for task, packed in zip(unpacked, tasks, strict=True):
        for child in packed[2]:
            if offset <= child < end:
                unpacked[child - offset]["parent"] = task["id"]
        if len(packed) > 4:
            for short, value in packed[4].items():
                if value is None:
                    del task[_LONG[short]]
                else:
                    task[_LONG[short]] = values.get(value) if short in _SHARED else value


# --- format 2, as stored before (read only) ---------------------------------------------------------------

_V2_DEFAULTS: dict[str, Any] = {"triggered": False, "internal_data": {}, "data": {}, "delta": _EMPTY_DELTA,
                                "typename": "Task"}
_V2_SHORT = {name: short for short, name in _LONG.items()}


def _unpack_format_2(stored: dict[str, Any]) -> dict[str, Any]:
    ids = _decoded_ids(stored["ids"])
    deltas = stored.get("deltas", [])
    own = {k: v for k, v in stored.items() if k not in ("format", "ids", "subprocesses", "deltas")}
    state = _unpack_workflow_2(own, ids, deltas)
    state["subprocesses"] = {_unpack_value_2(key, ids): _unpack_workflow_2(workflow, ids, deltas)
                             for key, workflow in stored.get("subprocesses", {}).items()}
    return state


def _unpack_workflow_2(packed: dict[str, Any], ids: list[str], deltas: list[Any]) -> dict[str, Any]:
    offset = packed["offset"]
    workflow = {key: _unpack_value_2(value, ids) for key, value in packed.items() if key not in ("tasks", "offset")}
    parents: dict[int, str] = {}
    for position, task in enumerate(packed["tasks"], offset):
        for child in task[2]:
            parents[child] = ids[position]
    workflow["tasks"] = {ids[position]: _unpack_task_2(task, ids[position], parents.get(position), ids, deltas)
                         for position, task in enumerate(packed["tasks"], offset)}
    return workflow


def _unpack_task_2(packed: list[Any], task_id: str, parent: str | None, ids: list[str],
                   deltas: list[Any]) -> dict[str, Any]:
    spec, state, children, changed_at = packed[:4]
    extras = packed[4] if len(packed) > 4 else {}
    task: dict[str, Any] = {"id": task_id, "parent": parent, "children": [ids[child] for child in children],
                            "last_state_change": changed_at, "state": state, "task_spec": spec}
    for name, default in _V2_DEFAULTS.items():
        short = _V2_SHORT[name]
        if short not in extras:
            task[name] = _copy(default)
        elif short == "D" and isinstance(extras[short], int):
            task[name] = _unpack_value_2(deltas[extras[short]], ids)
        elif extras[short] is not None:
            task[name] = _unpack_value_2(extras[short], ids)
    return task


def _copy(value: Any) -> Any:
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


def _unpack_value_2(value: Any, ids: list[str]) -> Any:
    if not value:
        return {} if isinstance(value, dict) else [] if isinstance(value, list) else value
    if isinstance(value, str):
        if value.startswith("~~"):
            return value[1:]
        if value.startswith("~"):
            return ids[int(value[1:])]
        return value
    if isinstance(value, dict):
        return {_unpack_value_2(key, ids): _unpack_value_2(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_unpack_value_2(item, ids) for item in value]
    return value
