"""Messages from outside: delivered to the running instances waiting for them.

An instance is found by the message's name, and narrowed by its business key and by correlation values
(each must equal the process variable of that name where the instance waits, as Camunda's correlation keys
do). Without `all`, exactly one instance must match; with it, every match gets the message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.foundation.errors import N_, Conflict, InvalidInput, NotFound
from engine.work import instances, work_items
from engine.work.instances import RUNNING, ProcessInstance

MAX_NAME = 200
MAX_CANDIDATES = 10_000


def deliver(session: Session, name: str, payload: Any, actor: str, *, business_key: str | None = None,
            correlation: dict[str, Any] | None = None, to_all: bool = False) -> list[ProcessInstance]:
    """Deliver a message; return the instances that received it. NotFound when none waits for it."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or "|" in name:
        raise InvalidInput(N_("a message name is 1 to %(limit)s characters, without '|'"),
                           params={"limit": MAX_NAME})
    work_items.check_variables(payload, N_("the message payload"))
    work_items.check_variables(correlation or {}, N_("the correlation values"))
    matching = waiting_for(session, name, business_key=business_key, correlation=correlation or {})
    if not matching:
        raise _none_waits(name, business_key, correlation)
    if len(matching) > 1 and not to_all:
        raise Conflict(N_("%(count)s instances wait for the message %(name)s: narrow it with a business key or "
                          "correlation values, or send it to all of them"),
                       params={"count": str(len(matching)), "name": repr(name)})
    delivered = []
    for instance_id in matching:  # in id order, as every writer locks
        instance = instances.lock(session, instance_id)
        if instance.status != RUNNING or not instances.load_runtime(instance).message_matches(name, correlation or {}):
            raise Conflict(N_("instance %(instance)s stopped waiting for %(name)s while the message was sent; "
                              "try again"), params={"instance": str(instance_id), "name": repr(name)})
        delivered.append(instances.send_message(session, instance_id, name, payload, actor))
    return delivered


def _none_waits(name: str, business_key: str | None, correlation: dict[str, Any] | None) -> NotFound:
    params = {"name": repr(name), "business_key": repr(business_key)}
    if business_key and correlation:
        return NotFound(N_("no running instance waits for the message %(name)s with business key %(business_key)s "
                           "and these correlation values"), params=params)
    if business_key:
        return NotFound(N_("no running instance waits for the message %(name)s with business key %(business_key)s"),
                        params=params)
    if correlation:
        return NotFound(N_("no running instance waits for the message %(name)s and these correlation values"),
                        params=params)
    return NotFound(N_("no running instance waits for the message %(name)s"), params=params)


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
