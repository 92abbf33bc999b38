"""The supervisor's escalation board: act on an open escalation, one at a time or in bulk.

Every action that changes the work goes into the running instance as a message (see
`directives.supervisor_action`); the escalation row only records that it was dealt with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.directives import access, directives
from engine.directives.access import Actor
from engine.directives.directives import Directive
from engine.foundation import clock, text_search
from engine.foundation.errors import N_, Conflict, InvalidInput, NotFound, Sentence, TansiqError, Term
from engine.people import users
from engine.storage import audit
from engine.work.escalations import Escalation

ACTIONS = ("extend", "reassign", "escalate", "close", "comment")
STATUS_WORDS = {"open": N_("open"), "resolved": N_("resolved")}


def resolve(session: Session, escalation_id: int, action: str, actor: str, note: str, **fields: Any) -> Escalation:
    escalation = _locked_open(session, escalation_id)
    if action not in ACTIONS:
        raise InvalidInput(N_("unknown action %(value)s (known: %(known)s)"),
                           params={"value": repr(action), "known": ", ".join(ACTIONS)})
    if escalation.directive_id is None:
        raise Conflict(N_("escalation %(escalation)s does not belong to a directive"),
                       params={"escalation": str(escalation_id)})
    if action == "comment":
        if not note or not note.strip():
            raise InvalidInput(N_("a comment needs text"))
        audit.record(session, actor, "escalation.commented", directives.subject(escalation.directive_id),
                     {"escalation": escalation.id, "note": note.strip()})
        return escalation
    directives.supervisor_action(session, escalation.directive_id, actor, action, note, **fields)
    escalation.status = "resolved"
    escalation.resolved_action, escalation.resolution_note = action, (note or "").strip() or None
    escalation.resolved_by, escalation.resolved_at = actor, clock.now()
    directive = directives.get(session, escalation.directive_id)
    directives.count_escalations(session, directive, [(escalation.entity, escalation.level)], -1)
    directives.refresh(session, directive)
    audit.record(session, actor, "escalation.resolved", directives.subject(escalation.directive_id),
                 {"escalation": escalation.id, "action": action, "note": note, **fields})
    return escalation


@dataclass(frozen=True)
class BulkOutcome:
    """How one escalation of a bulk action went: `code` is "ok", or the refusal's `TansiqError.code`; the
    `message` says it in either language."""

    escalation_id: int
    ok: bool
    message: Sentence
    code: str = "ok"

    @classmethod
    def refused(cls, escalation_id: int, exc: TansiqError) -> BulkOutcome:
        return cls(escalation_id, False, Sentence.of(exc), exc.code)


def resolve_many(session: Session, escalation_ids: list[int], action: str, actor: str, note: str,
                 **fields: Any) -> list[BulkOutcome]:
    """Apply one action to many escalations; each succeeds or fails on its own, with its reason."""
    # Lock the batch in id order before anything else, as every writer does, so two bulk actions (or a
    # bulk and a single one) cannot each hold one escalation and wait for the other.
    session.scalars(select(Escalation.id).where(Escalation.id.in_(escalation_ids)).order_by(Escalation.id)
                    .with_for_update()).all()
    outcomes = []
    for escalation_id in escalation_ids:
        mark = audit.mark(session)
        try:
            with session.begin_nested():
                resolve(session, escalation_id, action, actor, note, **fields)
            outcomes.append(BulkOutcome(escalation_id, True, Sentence(N_("done")), "ok"))
        except TansiqError as exc:
            audit.discard_since(session, mark)
            outcomes.append(BulkOutcome.refused(escalation_id, exc))
    return outcomes


def open_escalations(session: Session, *, level: int | None = None, entity: str | None = None,
                     limit: int = 100, offset: int = 0) -> list[Escalation]:
    query = select(Escalation).where(Escalation.status == "open")
    if level is not None:
        query = query.where(Escalation.level == level)
    if entity is not None:
        query = query.where(Escalation.entity == entity)
    return list(session.scalars(query.order_by(Escalation.level.desc(), Escalation.raised_at).limit(limit)
                                .offset(offset)))


def _locked_open(session: Session, escalation_id: int) -> Escalation:
    escalation = session.scalar(
        select(Escalation).where(Escalation.id == escalation_id).with_for_update()
        .execution_options(populate_existing=True)
    )
    if escalation is None:
        raise NotFound(N_("no escalation %(escalation)s"), params={"escalation": str(escalation_id)})
    if escalation.status != "open":
        raise Conflict(N_("escalation %(escalation)s was already %(status)s by %(actor)s"),
                       params={"escalation": str(escalation_id),
                               "status": Term.of(STATUS_WORDS, escalation.status),
                               "actor": users.display_name(session, escalation.resolved_by or "")})
    return escalation


# --- the board's list: filters, text search, sort, paging ----------------------------------------------

BOARD_SORTS = ("level", "due", "age", "entity")
MAX_SELECTED = 1_000  # escalations one "every matching" bulk action may touch


@dataclass(frozen=True)
class BoardFilters:
    """What the board (page or API) was asked to list. `sort` is one of BOARD_SORTS; the default order is the
    board's own: highest level first, then oldest."""

    status: str = "open"
    level: int | None = None
    entity: str | None = None
    track: str | None = None
    min_age_hours: float | None = None
    directive: int | None = None
    text: str | None = None
    sort: str = "level"
    descending: bool | None = None  # None: the sort's natural direction


def board_conditions(filters: BoardFilters, now: datetime) -> list[Any]:
    conditions: list[Any] = [] if filters.status == "all" else [Escalation.status == filters.status]
    if filters.level is not None:
        conditions.append(Escalation.level == filters.level)
    if filters.entity is not None:
        conditions.append(Escalation.entity == filters.entity)
    if filters.min_age_hours is not None:
        conditions.append(Escalation.raised_at <= now - timedelta(hours=filters.min_age_hours))
    if filters.directive is not None:
        conditions.append(Escalation.directive_id == filters.directive)
    if filters.track is not None:
        conditions.append(Directive.track == filters.track)
    text = text_search.search_text(filters.text)
    if text:
        # As a semi-join on the directives found, so the planner can start from the search's own index
        # rather than walk every open escalation and look each directive up.
        conditions.append(Escalation.directive_id.in_(select(Directive.id).where(directives.text_matches(text))))
    return conditions


def _needs_directive(filters: BoardFilters) -> bool:
    """Whether the conditions name the directive's columns (its track; the search is a sub-select)."""
    return filters.track is not None


def board_order(filters: BoardFilters) -> list[Any]:
    """The sort, then the id: a stable order, so paging never repeats or skips a row."""
    if filters.sort not in BOARD_SORTS:
        raise InvalidInput(N_("unknown sort %(value)s (known: %(known)s)"),
                           params={"value": repr(filters.sort), "known": ", ".join(BOARD_SORTS)})
    natural = {"level": True, "due": False, "age": True, "entity": False}[filters.sort]
    descending = natural if filters.descending is None else filters.descending
    column = {"level": Escalation.level, "due": Directive.deadline_at, "entity": Escalation.entity,
              "age": Escalation.raised_at}[filters.sort]
    # Older is "more age": ascending age is the newest first.
    if filters.sort == "age":
        descending = not descending
    first = column.desc() if descending else column.asc()
    if filters.sort == "level":  # within a level, the oldest first, as the board always listed them
        return [first, Escalation.raised_at, Escalation.id]
    return [first.nulls_last(), Escalation.id.desc() if descending else Escalation.id]


def search_board(session: Session, user: Actor, filters: BoardFilters, limit: int, offset: int,
                 now: datetime | None = None) -> tuple[list[tuple[Escalation, Directive | None]], int]:
    """One page of the escalations the user may see that match, with their directives, and how many match."""
    now = now or clock.now()
    conditions = board_conditions(filters, now)
    order = board_order(filters)
    query = access.visible_escalations(
        select(Escalation, Directive).outerjoin(Directive, Directive.id == Escalation.directive_id), user)
    # Counted on the escalation table (joined to directives only when a filter names them): the outer join
    # would make PostgreSQL read every matching row instead of the index (238 ms against 8 ms for 51,540).
    counted = select(func.count()).select_from(Escalation)
    if _needs_directive(filters):
        counted = counted.join(Directive, Directive.id == Escalation.directive_id)
    counted = access.visible_escalations(counted, user)
    total = session.scalar(counted.where(*conditions)) or 0
    rows = session.execute(query.where(*conditions).order_by(*order).limit(limit).offset(offset)).all()
    return list(rows), total


def matching_ids(session: Session, user: Actor, filters: BoardFilters, now: datetime | None = None) -> list[int]:
    """Every escalation the user may see that matches (for "act on all that match"), in the board's order;
    refused when more than MAX_SELECTED match."""
    conditions = board_conditions(filters, now or clock.now())
    query = access.visible_escalations(
        select(Escalation.id).outerjoin(Directive, Directive.id == Escalation.directive_id), user)
    ids = list(session.scalars(query.where(*conditions).order_by(*board_order(filters)).limit(MAX_SELECTED + 1)))
    if len(ids) > MAX_SELECTED:
        raise InvalidInput(N_("more than %(limit)s escalations match: narrow the filters first"),
                           params={"limit": MAX_SELECTED})
    return ids
