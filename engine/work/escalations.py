"""Escalations: an overdue or stuck item raised to a higher level, once per firing.

The `escalate` operation is called by a model's service task (usually after a boundary timer).
A unique key per instance and firing makes a repeat impossible at the database level.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    cast,
    event,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from engine.bpmn.bpmn_runtime import ServiceCall, WorkflowFailure
from engine.bpmn.service_tasks import ExecutionContext, operation
from engine.foundation import clock
from engine.people.entities import Entity
from engine.people.roles import LEADERSHIP, ROLES, SUPERVISOR
from engine.storage import audit
from engine.storage.db import Base, UTCDateTime
from engine.work import notifications

REASONS = ("overdue", "unacknowledged", "loop_cap", "manual")
MAX_ESCALATION_LEVEL = 5
DEFAULT_TARGETS = {1: SUPERVISOR, 2: LEADERSHIP}
_RAISED = "tansiq.escalations_raised"  # session.info key: instances that raised escalations in this session
_KNOWN_ENTITIES = "tansiq.known_entities"  # session.info key: entity codes found in this transaction


def note_raised(session: Session, instance_id: int) -> None:
    """Say that an instance raised escalations, so its directive's projection takes them (resolving one
    recomputes the projection itself: `engine.directives.directives.refresh`)."""
    session.info.setdefault(_RAISED, set()).add(instance_id)


def raised(session: Session, instance_id: int) -> bool:
    return instance_id in session.info.get(_RAISED, ())


@event.listens_for(Session, "after_transaction_end")
def _forget_entities(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_KNOWN_ENTITIES, None)


class Escalation(Base):
    __tablename__ = "escalation"
    __table_args__ = (UniqueConstraint("instance_id", "source_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    source_key: Mapped[str] = mapped_column(String(250))
    element_id: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    target_role: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str | None] = mapped_column(String(100), index=True)
    directive_id: Mapped[int | None] = mapped_column(ForeignKey("directive.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    note: Mapped[str | None] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resolved_action: Mapped[str | None] = mapped_column(String(20))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@operation("escalate")
def escalate(context: ExecutionContext, call: ServiceCall) -> dict[str, Any]:
    level = call.params.get("level", 1)
    reason = call.params.get("reason", "overdue")
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_ESCALATION_LEVEL:
        raise WorkflowFailure(f"escalation level must be 1 to {MAX_ESCALATION_LEVEL}, not {level!r}",
                              element_id=call.element_id)
    if reason not in REASONS:
        raise WorkflowFailure(f"unknown escalation reason {reason!r}", element_id=call.element_id)
    target = call.params.get("to_role") or DEFAULT_TARGETS.get(level, LEADERSHIP)
    if target not in ROLES:
        raise WorkflowFailure(f"unknown role {target!r}", element_id=call.element_id)
    entity = call.params.get("entity")
    if entity is not None and not _entity_exists(context.session, entity):
        raise WorkflowFailure(f"escalation to an unknown entity {entity!r}", element_id=call.element_id)
    instance_id = context.instance.id
    escalation = {
        "instance_id": instance_id, "element_id": call.element_id, "level": level, "reason": reason,
        "target_role": target, "entity": entity, "note": call.params.get("note"), "raised_at": clock.now(),
    }
    # Core rows: the timer worker's hot path reads none of them back
    escalation_id, escalation["source_key"] = context.session.connection().execute(_RAISE, escalation).one()
    note_raised(context.session, instance_id)
    _tell(context, escalation)
    audit.record(context.session, context.actor, "escalation.raised", f"instance:{instance_id}",
                 {"escalation": escalation_id, "level": level, "reason": reason, "to": target,
                  "element": call.element_id})
    return {"escalation_id": escalation_id, "level": level}


_TABLE = Escalation.__table__
# One statement: the escalation, keyed as the n-th firing of its element in its instance. Two workers
# replaying one saved state would compute the same key, and the unique constraint lets only one commit.
_RAISE = insert(_TABLE).from_select(
    ["instance_id", "source_key", "element_id", "level", "reason", "target_role", "entity", "note", "status",
     "raised_at"],
    select(bindparam("instance_id", type_=Integer),
           bindparam("element_id", type_=String) + "#" + cast(func.count() + 1, String),
           bindparam("element_id", type_=String), bindparam("level", type_=Integer),
           bindparam("reason", type_=String), bindparam("target_role", type_=String),
           bindparam("entity", type_=String), bindparam("note", type_=Text), literal("open", String),
           bindparam("raised_at", type_=UTCDateTime))
    .select_from(_TABLE)
    .where(_TABLE.c.instance_id == bindparam("instance_id", type_=Integer),
           _TABLE.c.element_id == bindparam("element_id", type_=String)),
).returning(_TABLE.c.id, _TABLE.c.source_key)
_ENTITY_EXISTS = select(Entity.id).where(Entity.code == bindparam("code"))


def _entity_exists(session: Session, code: Any) -> bool:
    """Whether an entity has the code: looked up once a transaction (a timer batch escalates to a few)."""
    if not isinstance(code, str):
        return False
    known: set[str] = session.info.setdefault(_KNOWN_ENTITIES, set())
    if code in known:
        return True
    found = session.execute(_ENTITY_EXISTS, {"code": code}).first() is not None
    if found and not session.in_nested_transaction():  # entities are never deleted; a savepoint's could be
        known.add(code)
    return found


def _tell(context: ExecutionContext, escalation: dict[str, Any]) -> None:
    """Whoever an escalation goes to hears of it, in the same transaction (the outbox)."""
    notifications.queue(
        context.session, escalation["instance_id"],
        f"instance:{escalation['instance_id']}:escalation:{escalation['source_key']}", "escalation",
        escalation["target_role"], None,
        {"level": escalation["level"], "reason": escalation["reason"], "entity": escalation["entity"]},
        escalation["raised_at"],
    )


def escalations_of(session: Session, instance_id: int) -> list[Escalation]:
    return list(session.scalars(
        select(Escalation).where(Escalation.instance_id == instance_id).order_by(Escalation.id)
    ))
