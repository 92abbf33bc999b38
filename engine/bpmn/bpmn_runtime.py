"""The BPMN runtime: the only module of the engine that imports SpiffWorkflow.

It parses models, runs workflows with the restricted evaluator attached, and turns workflow state
into plain JSON (without the spec, which is stored once per model version) and back.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.util.diff import SpecDiff, diff_workflow, migrate_workflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.exc import SQLAlchemyError

from engine.bpmn import expressions, state_codec
from engine.calendar.business_calendar import WORKWEEK, BusinessCalendar
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, ExpressionError, ModelRejected, Sentence, TansiqError, Term

BPMN_XSD_PATH = XSD_PATH
DMN_XSD_PATHS: dict[str, str] = dict(DMN_SCHEMAS)  # DMN namespace -> its XSD (DMN 1.1 to 1.3)
MAX_TREE_DEPTH = 700
_TIMER_EVENT_TYPES = frozenset({"TimeDateEventDefinition", "DurationTimerEventDefinition", "CycleTimerEventDefinition"})

for _name in ("spiff", "spiff.task", "spiff.workflow", "spiff.metrics"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class _EngineClockDatetime(datetime):
    """SpiffWorkflow's timer module calls `datetime.now(timezone.utc)`: route it to `engine.foundation.clock`."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        moment = clock.now()
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


# The one clock hook: timers read engine.foundation.clock, and naive timer values are UTC, not the server's zone.
spiff_timer.datetime = _EngineClockDatetime
spiff_timer.LOCALTZ = UTC


class _StateConverter(BpmnWorkflowConverter):  # type: ignore[misc]  # SpiffWorkflow has no types
    """A workflow as an instance's state: SpiffWorkflow's conversion without the specs.

    The specs come from the model's compiled, cached version on every load; converting them again on every
    save (a third of a dump's time with the shipped directive model) only to drop them was waste. What is
    left is BpmnWorkflowConverter.to_dict of SpiffWorkflow 3.2 (pinned; tests/test_runtime_state.py holds
    the two side by side).
    """

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


_registry = BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, BpmnWorkflow: _StateConverter})


class WorkflowFailure(TansiqError):
    """A step of a running workflow failed (expression, service task, loop cap)."""

    code = "incident"


class LoopCapExceeded(WorkflowFailure):
    code = "loop-cap"


@dataclass(frozen=True)
class ServiceCall:
    """What a service task asks of the engine."""

    operation: str
    params: dict[str, Any]
    element_id: str
    data: dict[str, Any]


ServiceHandler = Callable[[ServiceCall], Any]


@dataclass(frozen=True)
class StepName:
    name: str
    name_ar: str | None
    name_en: str | None


@dataclass
class CompiledModel:
    process_id: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]

    def step_names(self) -> dict[str, StepName]:
        """The user tasks of the model and its sub-processes: element id -> its names."""
        return {element_id: name for element_id, (name, is_step) in self._names.items() if is_step}

    def element_names(self) -> dict[str, StepName]:
        """Every named element of the model and its sub-processes (steps, events, gateways, service
        tasks): element id -> its names, for timelines that mention any element."""
        return {element_id: name for element_id, (name, _) in self._names.items()}

    @cached_property
    def _names(self) -> dict[str, tuple[StepName, bool]]:
        """Worked out once per compiled model (the compiled models are cached per version)."""
        names = {}
        for spec in (self.spec, *self.subprocess_specs.values()):
            for task_spec in spec.task_specs.values():
                bpmn_id = getattr(task_spec, "bpmn_id", None)
                if bpmn_id is None:
                    continue
                is_step = getattr(task_spec, "manual", False) or type(task_spec).__name__ in ("UserTask", "ManualTask")
                if not is_step and not task_spec.bpmn_name:
                    continue
                properties = dict((getattr(task_spec, "extensions", None) or {}).get("properties") or {})
                name = StepName(task_spec.bpmn_name or bpmn_id, properties.get("name_ar"), properties.get("name_en"))
                names[bpmn_id] = (name, is_step)
        return names

    def to_json(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id,
            "name": self.name,
            "spec": _registry.convert(self.spec),
            "subprocess_specs": {k: _registry.convert(v) for k, v in self.subprocess_specs.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompiledModel:
        return cls(
            process_id=data["process_id"],
            name=data["name"],
            spec=_registry.restore(data["spec"]),
            subprocess_specs={k: _registry.restore(v) for k, v in data["subprocess_specs"].items()},
        )


@dataclass(frozen=True)
class ElementStates:
    """What an instance's diagram marks: elements passed, and elements where a token waits or is ready."""

    done: list[str]
    current: list[str]


@dataclass(frozen=True)
class WaitingTask:
    """A task where a token is: ready to run or waiting (for a timer, a message or a person)."""

    element_id: str
    name: str
    state: str
    kind: str


@dataclass(frozen=True)
class SpecChanges:
    """Elements of the main process that a version adds, removes and changes, against another."""

    added: list[str]
    removed: list[str]
    changed: list[str]


def spec_changes(source: CompiledModel, target: CompiledModel) -> SpecChanges:
    spec_diff = SpecDiff(_registry, source.spec, target.spec)
    return SpecChanges(added=sorted(_bpmn_ids(spec_diff.added)), removed=sorted(_bpmn_ids(spec_diff.removed)),
                       changed=sorted(_bpmn_ids(spec_diff.changed)))


@dataclass(frozen=True)
class MigrationPlan:
    """What moving an instance to another version of its model does, decided before anything changes.

    `moves` are the tasks where a token is, each with its counterpart in the new version; `refusals` say
    why the instance cannot move (a token would be lost); `changes` compare the two versions' elements.
    """

    moves: list[WaitingTask]
    refusals: list[Sentence]
    changes: SpecChanges

    @property
    def possible(self) -> bool:
        return not self.refusals

    @property
    def added(self) -> list[str]:
        return self.changes.added

    @property
    def removed(self) -> list[str]:
        return self.changes.removed


@dataclass(frozen=True)
class UserTaskView:
    task_id: str
    element_id: str
    name: str
    lane: str | None
    properties: dict[str, str]
    extensions: dict[str, Any]
    data: dict[str, Any] = field(repr=False)
    earlier_visits: int = 0  # how often this instance finished this step before: rework when not 0


def parse_model(document: etree._Element, filename: str, process_id: str,
                decisions: list[etree._Element] | None = None) -> CompiledModel:
    """Build the executable spec of `process_id` from an already validated document, with the (already
    validated) DMN documents of the decisions its business rule tasks name."""
    parser = SpiffBpmnParser()
    try:
        for dmn in decisions or []:
            parser.add_dmn_xml(dmn, filename="decision.dmn")
        parser.add_bpmn_xml(document, filename=filename)
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        raise ModelRejected(N_("%(file)s: %(reason)s"), params={"file": filename,
                                                                "reason": exc.args[0] if exc.args else str(exc)},
                            element_id=exc.id) from None
    except (SpiffWorkflowException, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ModelRejected(N_("%(file)s: the model cannot be built: %(reason)s"),
                            params={"file": filename, "reason": str(exc)}) from None
    return CompiledModel(process_id, getattr(spec, "description", None) or process_id, spec, subprocess_specs)


# Where an instance's expressions find their business calendar (`add_working_days`): called when the
# function is, so a directive linked after the instance was made is found. Without one: `WORKWEEK`.
CalendarSource = Callable[[], BusinessCalendar]


def _workweek() -> BusinessCalendar:
    return WORKWEEK


class _RestrictedEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]  # SpiffWorkflow has no types
    """SpiffWorkflow also calls `script_engine.environment` directly (message correlations, ad-hoc
    completion): the default environment there is plain `eval`, so it must be replaced too."""

    def __init__(self, functions: dict[str, Callable[..., Any]]) -> None:
        super().__init__()
        self._functions = functions

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        return expressions.evaluate(expression, context, self._functions)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        expressions.execute(script, context, self._functions)
        return True

    def call_service(self, context: Any, **kwargs: Any) -> Any:
        raise WorkflowFailure("service tasks go through the engine's registry")


class _RestrictedScriptEngine(PythonScriptEngine):  # type: ignore[misc]  # SpiffWorkflow has no types
    """Every expression, condition, timer value and script goes through `engine.bpmn.expressions`."""

    def __init__(self, service_handler: ServiceHandler | None, calendar: CalendarSource | None = None) -> None:
        # The instance's own functions, built once: every expression and script of the run gets them.
        self._functions = {"add_working_days": expressions.working_days(calendar or _workweek)}
        super().__init__(environment=_RestrictedEnvironment(self._functions))
        self._service_handler = service_handler

    def validate(self, expression: str) -> None:
        compile(expression, "<expression>", "eval")  # a SyntaxError, as SpiffWorkflow's DMN engine expects
        expressions.check(expression)

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        data = {**task.data, **external_context} if external_context else task.data  # a DMN test's `?`
        try:
            return expressions.evaluate(expression, data, _runtime_functions(task, self._functions))
        except ExpressionError as exc:
            raise WorkflowFailure(exc.message, element_id=task.task_spec.bpmn_id) from None

    def execute(self, task: Any, script: str, external_context: Any = None) -> bool:
        try:
            expressions.execute(script, task.data, _runtime_functions(task, self._functions))
        except ExpressionError as exc:
            raise WorkflowFailure(exc.message, element_id=task.task_spec.bpmn_id) from None
        return True

    def call_service(self, task: Any, operation_name: str = "", operation_params: Any = None, **_: Any) -> str:
        if self._service_handler is None:
            raise WorkflowFailure(f"no service handler for {operation_name!r}", element_id=task.task_spec.bpmn_id)
        params = {name: param["value"] for name, param in (operation_params or {}).items()}
        call = ServiceCall(operation_name, params, task.task_spec.bpmn_id, dict(task.data))
        return json.dumps(self._service_handler(call))


def _restorable(state: dict[str, Any], model: CompiledModel) -> dict[str, Any]:
    """What SpiffWorkflow's restore may consume, the stored state left whole.

    The restore pops each sub-process from the mapping it is given and keeps the correlations dictionaries
    it finds; the state is loaded again when a failed run's clean part is applied, and a sub-process taken
    out of it then (a directive's deadline watch) was lost for good. The spec objects come from the
    per-version cache; the registry passes them through untouched.
    """
    subprocesses = {key: dict(sub, correlations=_copied(sub.get("correlations")))
                    for key, sub in state.get("subprocesses", {}).items()}
    return dict(state, spec=model.spec, subprocess_specs=dict(model.subprocess_specs), subprocesses=subprocesses,
                correlations=_copied(state.get("correlations")))


def _copied(value: dict[str, Any] | None) -> dict[str, Any]:
    return copy.deepcopy(value) if value else {}


@dataclass(frozen=True)
class EscalationTimer:
    element_id: str
    level: int
    entity: str | None
    due: datetime


_ESCALATION_SEARCH_DEPTH = 3  # a timer's escalate task is its next element, or close after it


def _escalation_after(spec: Any) -> tuple[int, str | None] | None:
    """The level (a whole number) and entity expression of the `escalate` service task a timer leads to."""
    frontier, seen = list(spec.outputs), set()
    for _ in range(_ESCALATION_SEARCH_DEPTH):
        following = []
        for candidate in frontier:
            if id(candidate) in seen:
                continue
            seen.add(id(candidate))
            if getattr(candidate, "operation_name", None) == "escalate":
                params = getattr(candidate, "operation_params", None) or {}
                level = str((params.get("level") or {}).get("value", "")).strip()
                entity = (params.get("entity") or {}).get("value")
                return (int(level), entity) if level.isdigit() else None
            following.extend(candidate.outputs)
        frontier = following
    return None


def _quietly(source: str | None, data: dict[str, Any]) -> str | None:
    """An expression's text value, or None when it cannot be evaluated here."""
    if not source:
        return None
    try:
        value = expressions.evaluate(source, data)
    except (ExpressionError, TansiqError):
        return None
    return str(value)[:100] if value is not None else None


def _all_tasks(workflow: BpmnWorkflow) -> list[Any]:
    """Every task of the instance, sub-processes included (SpiffWorkflow's search skips some of them)."""
    tasks = list(workflow.tasks.values())
    for subprocess in workflow.subprocesses.values():
        tasks.extend(subprocess.tasks.values())
    return tasks


def _completed(workflow: BpmnWorkflow) -> list[Any]:
    return [t for t in _all_tasks(workflow) if t.state == TaskState.COMPLETED and _element_id(t) is not None]


def _element_id(task: Any) -> str | None:
    """The BPMN id of a task's element; None for SpiffWorkflow's own tasks, and for a completed task of an
    element that a migration to a newer version removed."""
    spec = task.task_spec
    return getattr(spec, "bpmn_id", None) if spec is not None else None


_TOKEN_STATES = TaskState.READY | TaskState.WAITING | TaskState.STARTED
# migrate_workflow resets (and so re-predicts) the tasks in this mask: by default the ready and waiting
# ones, which restarts a waiting timer's clock. A clean instance state has no task in ERROR, so this resets
# nothing; the predicted children of a moved task are synced with the new spec when the task completes.
_RESET_NO_WAITING_TASK = TaskState.ERROR


def _waiting_task(task: Any) -> WaitingTask:
    spec = task.task_spec
    return WaitingTask(element_id=spec.bpmn_id, name=spec.bpmn_name or spec.bpmn_id,
                       state=TaskState.get_name(task.state).lower(), kind=type(spec).__name__)


def _runtime_functions(task: Any, functions: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    def visits(element_id: str) -> int:
        return sum(1 for t in _completed(task.workflow.top_workflow) if t.task_spec.bpmn_id == element_id)

    return {**functions, "visits": visits}


class Runtime:
    """A workflow in memory, bound to its model and a service handler for one unit of work."""

    def __init__(self, model: CompiledModel, workflow: BpmnWorkflow, max_visits: int, max_tasks: int) -> None:
        self.model = model
        self.workflow = workflow
        self.max_visits = max_visits
        self.max_tasks = max_tasks

    @classmethod
    def start(cls, model: CompiledModel, data: dict[str, Any], handler: ServiceHandler | None,
              max_visits: int, max_tasks: int, calendar: CalendarSource | None = None) -> Runtime:
        workflow = BpmnWorkflow(model.spec, model.subprocess_specs,
                                script_engine=_RestrictedScriptEngine(handler, calendar))
        for task in workflow.get_tasks(state=TaskState.READY):  # the start task: its data flows onward
            task.data.update(data)
        return cls(model, workflow, max_visits, max_tasks)

    @classmethod
    def load(cls, model: CompiledModel, state: dict[str, Any], handler: ServiceHandler | None,
             max_visits: int, max_tasks: int, calendar: CalendarSource | None = None) -> Runtime:
        workflow = _registry.restore(_restorable(state_codec.unpack(state), model))
        workflow.script_engine = _RestrictedScriptEngine(handler, calendar)  # never the unrestricted default
        return cls(model, workflow, max_visits, max_tasks)

    def dump(self) -> dict[str, Any]:
        """SpiffWorkflow's conversion of the workflow, less the specs."""
        state: dict[str, Any] = _registry.convert(self.workflow)
        return state

    def stored(self) -> dict[str, Any]:
        """The state as an instance keeps it: `dump()` packed (`engine.bpmn.state_codec`); `load` reads both."""
        return state_codec.pack(self.dump())

    # Advancing -------------------------------------------------------------------------------

    def run_engine(self) -> None:
        self._guarded(self.workflow.do_engine_steps)

    def fire_timers(self) -> None:
        def step() -> None:
            self.workflow.refresh_timers()
            self.workflow.do_engine_steps()

        self._guarded(step)

    def complete_user_task(self, task_id: str, data: dict[str, Any]) -> None:
        """Complete one READY user task with `data`; automatic steps are left to `run_engine`."""
        task = self._ready_user_task(task_id)
        task.data.update(data)
        self._guarded(task.run)

    def send_message(self, name: str, payload: Any) -> None:
        definition = self._waiting_message_definition(name)
        if definition is None:
            raise Conflict(N_("the process is not waiting for the message %(name)s"), params={"name": repr(name)})
        self._guarded(lambda: self.workflow.catch(BpmnEvent(definition, payload)))

    def cancel(self) -> None:
        self.workflow.cancel()

    def _guarded(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except (TansiqError, SQLAlchemyError):
            raise  # the engine's own refusals, and database trouble, are not defects of the model
        except RecursionError:
            raise LoopCapExceeded("the process state grew too deep to run") from None
        except (WorkflowException, SpiffWorkflowException) as exc:
            raise WorkflowFailure(_spiff_message(exc), element_id=_spiff_element(exc)) from None
        except Exception as exc:  # a defect in a model must become an incident, never a crash
            raise WorkflowFailure(f"{type(exc).__name__}: {exc}") from None
        self._check_loop_cap()

    def _check_loop_cap(self) -> None:
        """Loops deepen the task tree (and break SpiffWorkflow past ~250 rounds); parallel instances
        only widen it. So a round of a loop is a new depth at which an element completed."""
        tasks = _all_tasks(self.workflow)
        if len(tasks) > self.max_tasks:
            raise LoopCapExceeded(f"the process has more than {self.max_tasks} steps")
        depths: dict[int, int] = {}
        deepest = max((_depth(t, depths) for t in tasks), default=0)
        if deepest > MAX_TREE_DEPTH:  # SpiffWorkflow stops looking for tasks at depth 1,000
            raise LoopCapExceeded(f"the process state is {deepest} steps deep, more than {MAX_TREE_DEPTH}")
        rounds = Counter(
            t.task_spec.bpmn_id for t in {(t.task_spec.bpmn_id, _depth(t, depths)): t for t in _completed(
                self.workflow)}.values()
        )
        if rounds:
            element, count = rounds.most_common(1)[0]
            if count > self.max_visits:
                raise LoopCapExceeded(
                    f"{element} ran {count} times, more than the cap of {self.max_visits}", element_id=element
                )

    # Reading ---------------------------------------------------------------------------------

    @property
    def completed(self) -> bool:
        return bool(self.workflow.is_completed())

    def ready_user_tasks(self) -> list[UserTaskView]:
        views = []
        for task in self.workflow.get_tasks(state=TaskState.READY, manual=True):
            spec = task.task_spec
            extensions = dict(getattr(spec, "extensions", None) or {})
            views.append(UserTaskView(
                task_id=str(task.id),
                element_id=spec.bpmn_id,
                name=spec.bpmn_name or spec.bpmn_id,
                lane=spec.lane,
                properties=dict(extensions.get("properties") or {}),
                extensions=extensions,
                data=task.data,
                earlier_visits=self._finished_visits(task),
            ))
        return views

    def _finished_visits(self, task: Any) -> int:
        return sum(1 for done in task.workflow.get_tasks(state=TaskState.COMPLETED, spec_name=task.task_spec.name)
                   if done.workflow is task.workflow)

    def next_timer_at(self) -> datetime | None:
        due = [
            clock.as_utc(datetime.fromisoformat(str(event.value)))
            for event in self.workflow.waiting_events()
            if event.event_type in _TIMER_EVENT_TYPES and isinstance(event.value, str)
        ]
        return min(due) if due else None

    def waiting_escalations(self) -> list[EscalationTimer]:
        """The timers set now that lead to an `escalate` service task, with its level and entity: what
        will escalate when, for the forecast."""
        found = []
        for task in _all_tasks(self.workflow):
            definition = getattr(task.task_spec, "event_definition", None)
            value = task._get_internal_data("event_value") if task.state == TaskState.WAITING else None
            if type(definition).__name__ not in _TIMER_EVENT_TYPES or not isinstance(value, str):
                continue
            escalation = _escalation_after(task.task_spec)
            if escalation is not None:
                level, entity_source = escalation
                found.append(EscalationTimer(task.task_spec.bpmn_id, level, _quietly(entity_source, task.data),
                                             clock.as_utc(datetime.fromisoformat(value))))
        return sorted(found, key=lambda timer: (timer.due, timer.level, timer.element_id))

    def waiting_tasks(self) -> list[WaitingTask]:
        return [_waiting_task(t) for t in _all_tasks(self.workflow) if t.has_state(_TOKEN_STATES) and _element_id(t)]

    def element_states(self) -> ElementStates:
        done = {_element_id(t) for t in _completed(self.workflow)}
        current = {_element_id(t) for t in _all_tasks(self.workflow) if t.has_state(_TOKEN_STATES)}
        return ElementStates(done=sorted(e for e in done if e), current=sorted(e for e in current if e))

    def waiting_messages(self) -> list[str]:
        """Names of the messages the instance waits for now."""
        return sorted({d.name for d in self._waiting_message_definitions()})

    def message_matches(self, name: str, correlation: dict[str, Any]) -> bool:
        """Waits for `name` where each correlation value equals the process variable (or SpiffWorkflow
        correlation property) of that name, as Camunda's `correlationKeys` do."""
        known: dict[str, Any] = {}
        for values in self.workflow.correlations.values():
            known.update(values)
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            if definition is None or type(definition).__name__ != "MessageEventDefinition" or definition.name != name:
                continue
            if all(task.data.get(key, known.get(key, _MISSING)) == value for key, value in correlation.items()):
                return True
        return False

    # Variables at the point an incident stopped ---------------------------------------------------

    def variables(self) -> dict[str, Any]:
        """The process variables where its tokens are: what a retry runs with (the ready tasks' data first)."""
        merged: dict[str, Any] = {}
        for task in sorted(self._token_tasks(), key=lambda t: t.state != TaskState.READY, reverse=True):
            merged.update(task.data)
        return copy.deepcopy(merged)

    def change_variables(self, changes: dict[str, Any], removed: list[str]) -> None:
        """Set and remove variables at every point a token is, so that whichever branch runs next sees them."""
        for task in self._token_tasks():
            for name in removed:
                task.data.pop(name, None)
            task.data.update(copy.deepcopy(changes))

    def _token_tasks(self) -> list[Any]:
        return [t for t in _all_tasks(self.workflow) if t.has_state(_TOKEN_STATES)]

    # Moving to another version of the model --------------------------------------------------------

    def plan_migration(self, target: CompiledModel, changes: SpecChanges | None = None) -> MigrationPlan:
        """What moving to `target` would do; `changes` (the versions compared) when the caller has them."""
        return self._plan(target, *self._diffs(target), changes)

    def _diffs(self, target: CompiledModel) -> tuple[Any, dict[str, Any]]:
        top, subprocesses = diff_workflow(_registry, self.workflow, target.spec, target.subprocess_specs)
        return top, subprocesses

    def _plan(self, target: CompiledModel, top: Any, subprocesses: dict[str, Any],
              changes: SpecChanges | None) -> MigrationPlan:
        moves: list[WaitingTask] = []
        refusals: list[Sentence] = []
        pairs = [(self.workflow, top), *((self.workflow.subprocesses[key], diff) for key, diff in subprocesses.items())]
        for workflow, diff in pairs:
            for task in workflow.tasks.values():
                if not task.has_state(_TOKEN_STATES) or _element_id(task) is None:
                    continue
                moved = _counterpart(task, diff)
                if isinstance(moved, Sentence):
                    refusals.append(moved)
                else:
                    moves.append(_waiting_task(task))
            if diff is None and workflow is not self.workflow:
                refusals.append(Sentence(N_("the sub-process %(name)s is not in the new version"),
                                         name=workflow.spec.name))
        return MigrationPlan(moves=moves, refusals=refusals, changes=changes or spec_changes(self.model, target))

    def migrate(self, target: CompiledModel, changes: SpecChanges | None = None) -> MigrationPlan:
        """Move the instance to `target`, every token kept where it is (timers keep their due moment);
        refused whole, with nothing changed, when a token has no counterpart."""
        top, subprocesses = self._diffs(target)
        plan = self._plan(target, top, subprocesses, changes)
        if not plan.possible:
            raise Conflict(N_("the instance cannot move to this version: %(reasons)s"),
                           params={"reasons": list(plan.refusals)})
        migrate_workflow(top, self.workflow, target.spec, reset_mask=_RESET_NO_WAITING_TASK)
        for key, diff in subprocesses.items():
            subprocess = self.workflow.subprocesses[key]
            migrate_workflow(diff, subprocess, target.subprocess_specs[subprocess.spec.name],
                             reset_mask=_RESET_NO_WAITING_TASK)
        self.workflow.subprocess_specs = dict(target.subprocess_specs)
        for task in self._token_tasks():
            _repredict(task)
        self.model = target
        return plan

    def _waiting_message_definitions(self) -> list[Any]:
        definitions = []
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            definition = getattr(task.task_spec, "event_definition", None)
            if type(definition).__name__ == "MessageEventDefinition":
                definitions.append(definition)
        return definitions

    def _ready_user_task(self, task_id: str) -> Any:
        try:
            task = self.workflow.get_task_from_id(UUID(task_id))
        except (ValueError, TypeError, WorkflowException, KeyError):
            task = None
        if task is None or not task.task_spec.manual:
            raise Conflict(N_("no user task %(task)s in this process"), params={"task": str(task_id)})
        if task.state != TaskState.READY:
            raise Conflict(N_("the step %(element)s is no longer open (%(state)s)"),
                           params={"element": task.task_spec.bpmn_id, "state": _state_word(task)})
        return task

    def _waiting_message_definition(self, name: str) -> Any:
        return next((d for d in self._waiting_message_definitions() if d.name == name), None)


_MISSING = object()


TASK_STATE_WORDS = {"maybe": N_("maybe"), "likely": N_("likely"), "future": N_("future"), "waiting": N_("waiting"),
                    "ready": N_("ready"), "started": N_("started"), "completed": N_("completed"),
                    "error": N_("error"), "cancelled": N_("cancelled")}


def _state_word(task: Any) -> Term:
    """A task's state as a word of the catalogue (SpiffWorkflow's own names, lower case)."""
    name = TaskState.get_name(task.state).lower()
    return Term.of(TASK_STATE_WORDS, name)


def _counterpart(task: Any, diff: Any) -> Any:
    """The new spec a task with a token moves to, or why it cannot move."""
    element = _element_id(task)
    state = _state_word(task)
    if diff is None:
        return Sentence(N_("%(element)s (%(state)s) is in a sub-process the new version does not have"),
                        element=element, state=state)
    new_spec = diff.alignment.get(task)
    if new_spec is None:
        return Sentence(N_("%(element)s (%(state)s) has no counterpart in the new version"), element=element,
                        state=state)
    if type(new_spec) is not type(task.task_spec):
        kinds = type(new_spec).__name__, type(task.task_spec).__name__
        return Sentence(N_("%(element)s (%(state)s) is a %(new_kind)s in the new version, not a %(old_kind)s"),
                        element=element, state=state, new_kind=kinds[0], old_kind=kinds[1])
    return new_spec


def _repredict(task: Any) -> None:
    """What follows a task with a token, predicted again from its new spec; the task itself, its data and its
    timer are left as they are (SpiffWorkflow's reset would restart the timer). A multi-instance task's
    children are its instances, not its successors: they are left alone."""
    if isinstance(task.task_spec, LoopTask):
        return
    for child in list(task.children):
        if child.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE) and not any(
                d.has_state(_TOKEN_STATES | TaskState.FINISHED_MASK) for d in child):
            task.workflow._remove_task(child.id)
    task.task_spec._predict_hook(task)
    task.task_spec._predict(task, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)


def _bpmn_ids(specs: Any) -> set[str]:
    return {spec.bpmn_id for spec in specs if getattr(spec, "bpmn_id", None)}


def _depth(task: Any, memo: dict[int, int]) -> int:
    """Depth in the task tree, with sub-processes counted from their parent task."""
    key = id(task)
    if key not in memo:
        parent = task.parent
        if parent is None:
            parent = _subprocess_owner(task.workflow)
        memo[key] = 0 if parent is None else _depth(parent, memo) + 1
    return memo[key]


def _subprocess_owner(workflow: Any) -> Any:
    owner = getattr(workflow, "parent_task_id", None)
    if owner is None:
        return None
    try:
        return workflow.top_workflow.get_task_from_id(owner)
    except (WorkflowException, SpiffWorkflowException, KeyError):
        return None


def _spiff_message(exc: Exception) -> str:
    message = exc.args[0] if exc.args else type(exc).__name__
    notes = getattr(exc, "notes", None) or getattr(exc, "__notes__", None) or []
    return " ".join([str(message), *[str(n) for n in notes]])[:2000]


def _spiff_element(exc: Exception) -> str | None:
    task = getattr(exc, "task", None)
    spec = getattr(task, "task_spec", None) or getattr(exc, "task_spec", None)
    return getattr(spec, "bpmn_id", None)
