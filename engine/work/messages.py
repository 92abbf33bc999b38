"""Messages from outside: delivered to the running instances waiting for them.

An instance is found by the message's name, and narrowed by its business key and by correlation values
(each must equal the process variable of that name where the instance waits, as Camunda's correlation keys
do). Without `all`, exactly one instance must match; with it, every match gets the message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.foundation.errors import Conflict, InvalidInput, NotFound
from engine.work import instances, work_items
from engine.work.instances import RUNNING, ProcessInstance

MAX_NAME = 200
MAX_CANDIDATES = 10_000


def deliver(session: Session, name: str, payload: Any, actor: str, *, business_key: str | None = None,
            correlation: dict[str, Any] | None = None, to_all: bool = False) -> list[ProcessInstance]:
    """Deliver a message; return the instances that received it. NotFound when none waits for it."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or "|" in name:
        raise InvalidInput(f"a message name is 1 to {MAX_NAME} characters, without '|'")
    work_items.check_variables(payload, "the message payload")
    work_items.check_variables(correlation or {}, "the correlation values")
    matching = waiting_for(session, name, business_key=business_key, correlation=correlation or {})
    if not matching:
        raise NotFound(f"no running instance waits for the message {name!r}"
                       + (f" with business key {business_key!r}" if business_key else "")
                       + (" and these correlation values" if correlation else ""))
    if len(matching) > 1 and not to_all:
        raise Conflict(f"{len(matching)} instances wait for the message {name!r}: narrow it with a business key"
                       " or correlation values, or send it to all of them")
    delivered = []
    for instance_id in matching:  # in id order, as every writer locks
        instance = instances.lock(session, instance_id)
        if instance.status != RUNNING or not instances.load_runtime(instance).message_matches(name, correlation or {}):
            raise Conflict(f"instance {instance_id} stopped waiting for {name!r} while the message was sent; try again")
        delivered.append(instances.send_message(session, instance_id, name, payload, actor))
    return delivered


def waiting_for(session: Session, name: str, *, business_key: str | None = None,
                correlation: dict[str, Any] | None = None) -> list[int]:
    """Ids of the running instances waiting for `name` now (read without locks)."""
    query = select(ProcessInstance).where(
        ProcessInstance.status == RUNNING,
        or_(ProcessInstance.waiting_messages.contains(f"|{name}|", autoescape=True),
            ProcessInstance.waiting_messages.is_(None)),
    ).order_by(ProcessInstance.id).limit(MAX_CANDIDATES)
    if business_key is not None:
        query = query.where(ProcessInstance.business_key == business_key)
    return [instance.id for instance in session.scalars(query)
            if instances.load_runtime(instance).message_matches(name, correlation or {})]
