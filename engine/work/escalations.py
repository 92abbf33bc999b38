"""Escalations: an overdue or stuck item raised to a higher level, once per firing.

The `escalate` operation is called by a model's service task (usually after a boundary timer).
A unique key per instance and firing makes a repeat impossible at the database level.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, bindparam, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

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
_CHANGED = "tansiq.escalations_changed"  # session.info key: instances whose escalations changed in this session


def note_change(session: Session, instance_id: int) -> None:
    """Say that an instance's escalations were raised or resolved, so its directive's level is recomputed."""
    session.info.setdefault(_CHANGED, set()).add(instance_id)


def changed(session: Session, instance_id: int) -> bool:
    return instance_id in session.info.get(_CHANGED, ())


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
    connection = context.session.connection()  # Core rows: the timer worker's hot path reads none of them back
    earlier = connection.execute(_EARLIER, {"instance_id": instance_id, "element_id": call.element_id}).scalar_one()
    escalation = {
        "instance_id": instance_id,
        # The n-th firing of this element in this instance: two workers replaying one saved state would
        # compute the same key, and the unique constraint lets only one of them commit.
        "source_key": f"{call.element_id}#{earlier + 1}",
        "element_id": call.element_id, "level": level, "reason": reason, "target_role": target,
        "entity": entity, "note": call.params.get("note"), "status": "open",
        "raised_at": clock.now(),
    }
    escalation_id = connection.execute(_INSERT, escalation).scalar_one()
    note_change(context.session, instance_id)
    _tell(context, escalation)
    audit.record(context.session, context.actor, "escalation.raised", f"instance:{instance_id}",
                 {"escalation": escalation_id, "level": level, "reason": reason, "to": target,
                  "element": call.element_id})
    return {"escalation_id": escalation_id, "level": level}


_EARLIER = select(func.count()).select_from(Escalation).where(
    Escalation.instance_id == bindparam("instance_id"), Escalation.element_id == bindparam("element_id"))
_ENTITY_EXISTS = select(Entity.id).where(Entity.code == bindparam("code"))
_INSERT = insert(Escalation.__table__).returning(Escalation.__table__.c.id)


def _entity_exists(session: Session, code: Any) -> bool:
    return isinstance(code, str) and session.execute(_ENTITY_EXISTS, {"code": code}).first() is not None


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
