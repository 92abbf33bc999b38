"""The supervisor's escalation board: act on an open escalation, one at a time or in bulk.

Every action that changes the work goes into the running instance as a message (see
`directives.supervisor_action`); the escalation row only records that it was dealt with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, clock, directives
from engine.errors import Conflict, InvalidInput, NotFound, TansiqError
from engine.escalations import Escalation

ACTIONS = ("extend", "reassign", "escalate", "close", "comment")


def resolve(session: Session, escalation_id: int, action: str, actor: str, note: str, **fields: Any) -> Escalation:
    escalation = _locked_open(session, escalation_id)
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    if escalation.directive_id is None:
        raise Conflict(f"escalation {escalation_id} does not belong to a directive")
    if action == "comment":
        if not note or not note.strip():
            raise InvalidInput("a comment needs text")
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
    """How one escalation of a bulk action went: `code` is "ok", or the refusal's `TansiqError.code`."""

    escalation_id: int
    ok: bool
    message: str
    code: str = "ok"


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
            outcomes.append(BulkOutcome(escalation_id, True, "done", "ok"))
        except TansiqError as exc:
            audit.discard_since(session, mark)
            outcomes.append(BulkOutcome(escalation_id, False, str(exc), exc.code))
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
        raise NotFound(f"no escalation {escalation_id}")
    if escalation.status != "open":
        raise Conflict(f"escalation {escalation_id} was already {escalation.status} by {escalation.resolved_by}")
    return escalation
