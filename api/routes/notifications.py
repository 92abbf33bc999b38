"""The caller's own in-app notifications (the notification centre): list, count the unread, mark read.

Every query is scoped to the caller's deliveries: another user's notification id is answered 404, so its
existence is not revealed (the same rule as the engine's `mark_read`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Caller, State
from api.problems import documented
from api.schemas.common import MAX_ID, Page
from api.schemas.notifications import MarkedRead, NotificationLinks, NotificationOut, UnreadCount
from engine.delivery import notification_delivery as inbox
from engine.delivery.notification_delivery import InboxEntry

router = APIRouter(tags=["notifications"])
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID)]


def notification_out(entry: InboxEntry) -> NotificationOut:
    step = f"/api/v1/tasks/{entry.work_item_id}" if entry.work_item_id is not None else None
    directive = f"/api/v1/directives/{entry.directive_id}" if entry.directive_id is not None else None
    return NotificationOut(
        id=entry.delivery_id, template=entry.template, subject=entry.subject, body=entry.body,
        created_at=entry.created_at, read=entry.read, read_at=entry.read_at, step_id=entry.work_item_id,
        directive_id=entry.directive_id, links=NotificationLinks(step=step, directive=directive))


@router.get("/notifications", response_model=Page[NotificationOut], responses=documented(401, 422, 503))
def list_notifications(
    state: State,
    caller: Caller,
    unread: Annotated[bool, Query(description="Only the unread ones.")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[NotificationOut]:
    """The caller's in-app notifications, newest first, in the caller's language."""
    with state.db.reading() as session:
        entries = inbox.inbox(session, caller.id, unread, limit=limit, offset=offset)
        total = inbox.inbox_total(session, caller.id, unread)
    return Page(items=[notification_out(e) for e in entries], total=total, limit=limit, offset=offset)


@router.get("/notifications/unread-count", operation_id="countUnreadNotifications",
            response_model=UnreadCount, responses=documented(401, 503))
def count_unread(state: State, caller: Caller) -> UnreadCount:
    """The bell's figure: how many of the caller's in-app notifications are unread."""
    with state.db.reading() as session:
        return UnreadCount(unread=inbox.unread_count(session, caller.id))


@router.post("/notifications/read-all", operation_id="markAllNotificationsRead",
             response_model=MarkedRead, responses=documented(401, 503))
def mark_all_read(state: State, caller: Caller) -> MarkedRead:
    """Mark every unread notification of the caller read; answers how many were."""
    with state.db.transaction() as session:
        return MarkedRead(marked=inbox.mark_all_read(session, caller.id))


@router.post("/notifications/{notification_id}/read", operation_id="markNotificationRead",
             response_model=NotificationOut,
             responses=documented(401, 404, 422, 503))
def mark_read(notification_id: NotificationId, state: State, caller: Caller) -> NotificationOut:
    """Mark one of the caller's notifications read (again is harmless); another user's is not found."""
    with state.db.transaction() as session:
        inbox.mark_read(session, notification_id, caller.id)
        return notification_out(inbox.inbox_entry(session, notification_id, caller.id))
