"""The escalation timers each running instance has set, projected into indexed rows: what will escalate,
at which level, for which entity and when, without loading any workflow state (`engine.insight.forecast`).

`engine.work.instances` keeps them with every save. The instance's row holds a short signature of its timers
(`waiting_escalations`), so the rows are rewritten only when the timers change (a launch sets them, a firing,
an extension or a close changes them), not at every step. An instance in incident fires nothing: its rows go
(and come back when a retry saves it).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, ForeignKey, Index, Integer, String, bindparam, delete, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.bpmn.bpmn_runtime import EscalationTimer
from engine.storage.db import Base, UTCDateTime


class SetEscalationTimer(Base):
    __tablename__ = "escalation_timer"
    # The forecast counts a window of due moments per entity and level from these indexes alone.
    __table_args__ = (Index("ix_escalation_timer_due", "due_at", "entity", "level"),
                      Index("ix_escalation_timer_entity", "entity", "due_at", "level"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # a multi-instance element sets several
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    element_id: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)
    entity: Mapped[str] = mapped_column(String(100))  # NO_ENTITY when the model's expression gives none
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)


_TABLE = SetEscalationTimer.__table__
_DELETE = delete(_TABLE).where(_TABLE.c.instance_id == bindparam("of_instance"))
_INSERT = insert(_TABLE)
NONE_SET = ""  # the signature of an instance without escalation timers
NO_ENTITY = "-"


def signature(timers: list[EscalationTimer]) -> str:
    """A short fingerprint of the timers (NONE_SET when there are none)."""
    if not timers:
        return NONE_SET
    text = "|".join(f"{t.element_id}:{t.level}:{t.entity}:{t.due.isoformat()}" for t in timers)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def sync(session: Session, instance_id: int, before: str | None, timers: list[EscalationTimer]) -> str:
    """Make the instance's rows the `timers` when they differ from the signature `before` (None: not known);
    return the new signature."""
    after = signature(timers)
    if after == before:
        return after
    connection = session.connection()
    if before != NONE_SET:
        connection.execute(_DELETE, {"of_instance": instance_id})
    if timers:
        connection.execute(_INSERT, [{"instance_id": instance_id, "element_id": t.element_id, "level": t.level,
                                      "entity": t.entity or NO_ENTITY, "due_at": t.due} for t in timers])
    return after


def rebuild(connection: Connection, batch: int = 200) -> int:
    """Project the timers of every running instance again, loading each once (migration 0012); the others
    get none. Returns how many instances were loaded."""
    from engine.work import instances  # engine.work.instances keeps these rows: imported here, when rebuilding only

    table = Base.metadata.tables["process_instance"]
    connection.execute(update(table).where(table.c.status != instances.RUNNING).values(waiting_escalations=NONE_SET))
    loaded, after = 0, 0
    with Session(bind=connection) as session:
        while True:
            chunk = list(session.scalars(
                select(instances.ProcessInstance).where(instances.ProcessInstance.status == instances.RUNNING,
                                                        instances.ProcessInstance.id > after)
                .order_by(instances.ProcessInstance.id).limit(batch)))
            if not chunk:
                return loaded
            for instance in chunk:
                timers = instances.load_runtime(instance).waiting_escalations()
                connection.execute(_DELETE, {"of_instance": instance.id})
                value = sync(session, instance.id, NONE_SET, timers)
                connection.execute(update(table).where(table.c.id == instance.id).values(waiting_escalations=value))
            loaded, after = loaded + len(chunk), chunk[-1].id
            session.expunge_all()
