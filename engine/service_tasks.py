"""Named engine operations that a model's service tasks may call.

They run inside the unit of work that advances the instance, so their effects (an escalation, a
notification, a status) commit or roll back together with the step that caused them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from engine.bpmn_runtime import ServiceCall, ServiceHandler, WorkflowFailure

if TYPE_CHECKING:
    from engine.instances import ProcessInstance


@dataclass
class ExecutionContext:
    session: Session
    instance: ProcessInstance
    actor: str


Operation = Callable[[ExecutionContext, ServiceCall], Any]
_OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    def register(function: Operation) -> Operation:
        _OPERATIONS[name] = function
        return function

    return register


def operation_names() -> frozenset[str]:
    _load_builtin_operations()
    return frozenset(_OPERATIONS)


def handler_for(context: ExecutionContext) -> ServiceHandler:
    _load_builtin_operations()

    def handle(call: ServiceCall) -> Any:
        function = _OPERATIONS.get(call.operation)
        if function is None:
            raise WorkflowFailure(f"unknown service operation {call.operation!r}", element_id=call.element_id)
        return function(context, call)

    return handle


def _load_builtin_operations() -> None:
    # Importing the modules registers their operations (escalate, notify, set_status, change_deadline, ...).
    from engine import directives, escalations, instances, notifications  # noqa: F401
