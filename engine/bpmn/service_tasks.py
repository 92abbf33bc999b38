"""Named engine operations that a model's service tasks may call.

They run inside the unit of work that advances the instance, so their effects (an escalation, a
notification, a status) commit or roll back together with the step that caused them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from engine.bpmn.bpmn_runtime import ServiceCall, ServiceHandler, WorkflowFailure


class RunningInstance(Protocol):
    """What an operation sees of the instance it runs in (an `engine.work.instances.ProcessInstance`)."""

    @property
    def id(self) -> int: ...

    business_status: str | None


@dataclass
class ExecutionContext:
    session: Session
    instance: RunningInstance
    actor: str


Operation = Callable[[ExecutionContext, ServiceCall], Any]
_OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    def register(function: Operation) -> Operation:
        _OPERATIONS[name] = function
        return function

    return register


def operation_names() -> frozenset[str]:
    """Every registered operation. The modules that define them register them when imported, and the
    engine package imports them all (`engine.system.schema`), so the registry is whole before any use."""
    return frozenset(_OPERATIONS)


def handler_for(context: ExecutionContext) -> ServiceHandler:
    def handle(call: ServiceCall) -> Any:
        function = _OPERATIONS.get(call.operation)
        if function is None:
            raise WorkflowFailure(f"unknown service operation {call.operation!r}", element_id=call.element_id)
        return function(context, call)

    return handle

