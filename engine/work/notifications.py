"""Notifications: an outbox written in the same transaction as the step that asks for it.

Delivery (email over SMTP, in-app) reads the outbox; a message is never sent for a step that
rolled back, and never lost for one that committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.bpmn.bpmn_runtime import ServiceCall, WorkflowFailure
from engine.bpmn.service_tasks import ExecutionContext, operation
from engine.foundation import clock
from engine.people.roles import ROLES
from engine.storage import audit
from engine.storage.db import Base, JSONType, UTCDateTime


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (UniqueConstraint("source_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    source_key: Mapped[str] = mapped_column(String(250))
    template: Mapped[str] = mapped_column(String(100))
    recipient_role: Mapped[str | None] = mapped_column(String(40))
    recipient_entity: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One notification to one user on one channel, with its own retries."""

    __tablename__ = "notification_delivery"
    __table_args__ = (
        UniqueConstraint("notification_id", "user_id", "channel"),
        # The bell's unread count on every page and the notification centre's list (migration 0012).
        Index("ix_notification_delivery_inbox", "user_id", "channel", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | in_app
    language: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed | read
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000))


@operation("notify")
def notify(context: ExecutionContext, call: ServiceCall) -> dict[str, Any]:
    template = call.params.get("template")
    role = call.params.get("to_role")
    entity = call.params.get("to_entity")
    if not isinstance(template, str) or not template:
        raise WorkflowFailure("notify needs a template name", element_id=call.element_id)
    if role is not None and role not in ROLES:
        raise WorkflowFailure(f"unknown role {role!r}", element_id=call.element_id)
    if role is None and entity is None:
        raise WorkflowFailure("notify needs to_role or to_entity", element_id=call.element_id)
    prefix = f"instance:{context.instance.id}:{call.element_id}#"
    earlier = context.session.execute(
        select(func.count()).select_from(Notification)
        .where(Notification.source_key.startswith(prefix, autoescape=True))
    ).scalar_one()
    payload = {k: v for k, v in call.params.items() if k not in {"template", "to_role", "to_entity"}}
    notification_id = queue(context.session, context.instance.id, f"{prefix}{earlier + 1}",  # the n-th firing
                            template, role, entity, payload)
    audit.record(context.session, context.actor, "notification.queued", f"instance:{context.instance.id}",
                 {"notification": notification_id, "template": template, "to_role": role, "to_entity": entity})
    return {"notification_id": notification_id}


_QUEUE = insert(Notification.__table__).returning(Notification.__table__.c.id)


def queue(session: Session, instance_id: int, source_key: str, template: str, role: str | None, entity: str | None,
          payload: dict[str, Any], created_at: datetime | None = None) -> int:
    """Put a notification in the outbox of this transaction; its id. A Core row: the service tasks that
    queue one (on the timer worker's path) never read it back. `source_key` is unique: a replayed firing
    cannot queue the same notification twice."""
    notification_id: int = session.connection().execute(_QUEUE, {
        "instance_id": instance_id, "source_key": source_key, "template": template, "recipient_role": role,
        "recipient_entity": entity, "payload": payload, "status": "pending", "created_at": created_at or clock.now(),
    }).scalar_one()
    return notification_id


def notifications_of(session: Session, instance_id: int) -> list[Notification]:
    return list(session.scalars(
        select(Notification).where(Notification.instance_id == instance_id).order_by(Notification.id)
    ))
