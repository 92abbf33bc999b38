"""The inbox as a list: the steps a user may work, filtered, searched (their directive's reference and
titles), sorted and paged, for the inbox page and the API alike; and which of them wait on a request for
more time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from engine.directives import access
from engine.directives.access import Actor
from engine.directives.directives import Directive, subject, text_matches
from engine.foundation import clock, text_search
from engine.foundation.errors import N_, InvalidInput
from engine.storage import audit
from engine.work.work_items import COMPLETED, INBOX_ORDER, OPEN, WorkItem

INBOX_SORTS = ("due", "level", "age", "entity")
EXTENSION_REVIEW = "review_extension"  # the shipped models' step where a supervisor decides a request for time


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox was asked to list. `sort` None is the inbox's own order: due first (undated last) for open
    steps, the most recently done first for done ones."""

    status: str = OPEN  # open, completed, withdrawn or all
    overdue: bool | None = None
    directive: int | None = None
    element: str | None = None
    priority: str | None = None
    text: str | None = None
    sort: str | None = None
    descending: bool = False


def conditions(filters: InboxFilters, now: datetime) -> list[Any]:
    found: list[Any] = [] if filters.status == "all" else [WorkItem.status == filters.status]
    if filters.overdue is True:
        found += [WorkItem.status == OPEN, WorkItem.due_at.is_not(None), WorkItem.due_at < now]
    elif filters.overdue is False:
        found.append((WorkItem.due_at.is_(None)) | (WorkItem.due_at >= now) | (WorkItem.status != OPEN))
    if filters.directive is not None:
        found.append(Directive.id == filters.directive)
    if filters.element is not None:
        found.append(WorkItem.element_id == filters.element)
    if filters.priority is not None:
        found.append(Directive.priority == filters.priority)
    text = text_search.search_text(filters.text)
    if text:
        found.append(text_matches(text))
    return found


def needs_directive(filters: InboxFilters) -> bool:
    """Whether the conditions name the directive's columns, so a count must join it."""
    return (filters.directive is not None or filters.priority is not None or filters.sort == "level"
            or bool(text_search.search_text(filters.text)))


def order(filters: InboxFilters) -> list[Any]:
    """The sort, then the id (a stable order, so paging never repeats or skips a step)."""
    if filters.sort is None:
        if filters.status == COMPLETED:
            return [WorkItem.completed_at.desc(), WorkItem.id.desc()]
        return list(INBOX_ORDER)
    if filters.sort not in INBOX_SORTS:
        raise InvalidInput(N_("unknown sort %(value)s (known: %(known)s)"),
                           params={"value": repr(filters.sort), "known": ", ".join(INBOX_SORTS)})
    column = {"due": WorkItem.due_at, "level": Directive.escalation_level, "age": WorkItem.created_at,
              "entity": WorkItem.assignee_entity}[filters.sort]
    # Older is "more age": ascending age lists the newest first.
    descending = not filters.descending if filters.sort == "age" else filters.descending
    first = column.desc() if descending else column.asc()
    return [first.nulls_last(), WorkItem.id.desc() if descending else WorkItem.id]


def search(session: Session, user: Actor, filters: InboxFilters, limit: int, offset: int,
           now: datetime | None = None) -> tuple[list[tuple[WorkItem, Directive | None]], Any]:
    """One page of the user's inbox that matches, each step with its directive, and the count query (on
    work_item, joined to the directive only when a filter needs it) for the caller to run or bound."""
    code = access.entity_code(session, user)
    found = conditions(filters, now or clock.now())
    rows = session.execute(access.inbox_steps(user, code).where(*found).order_by(*order(filters))
                           .options(lazyload(Directive.supporting_entities), lazyload(Directive.tags))
                           .limit(limit).offset(offset)).all()
    counted = access.inbox(select(WorkItem.id), user, code)
    if needs_directive(filters):
        counted = counted.join(Directive, Directive.instance_id == WorkItem.instance_id)
    return list(rows), counted.where(*found)


def extension_pending(session: Session, instance_ids: list[int]) -> set[int]:
    """The instances among these whose entity asked for more time that no one has decided yet: the request is
    stored as the open review step it created, which goes away with the decision."""
    if not instance_ids:
        return set()
    return set(session.scalars(select(WorkItem.instance_id).where(
        WorkItem.instance_id.in_(set(instance_ids)), WorkItem.element_id == EXTENSION_REVIEW,
        WorkItem.status == OPEN)))


def requested_deadline(session: Session, directive_id: int) -> datetime | None:
    """The deadline the latest request for more time on this directive asked for (from the audit trail)."""
    event = session.scalar(select(audit.AuditEvent).where(audit.AuditEvent.subject == subject(directive_id),
                                                          audit.AuditEvent.action == "extension.requested")
                           .order_by(audit.AuditEvent.id.desc()).limit(1))
    if event is None or not isinstance(event.payload.get("new_deadline"), str):
        return None
    return datetime.fromisoformat(event.payload["new_deadline"])
