"""The escalation board: list what was raised (open or all), resolve one, resolve many."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session

from api.deps import Caller, CurrentUser, State, requires
from api.error_text import error_text, said
from api.problems import KINDS, documented, language_of
from api.schemas.common import MAX_ID, SEARCH_HELP, Page
from api.schemas.directives import EscalationOut, Track
from api.schemas.escalations import BulkOutcomeOut, BulkResolveOut, BulkResolveRequest, ResolveRequest
from api.views import escalation_out
from engine.directives import access, supervision
from engine.directives.directives import Directive
from engine.foundation import clock
from engine.foundation.errors import N_, Forbidden, InvalidInput, NotFound, TansiqError
from engine.work.escalations import Escalation

router = APIRouter(tags=["escalations"])
EscalationId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/escalations", operation_id="listEscalations",
            response_model=Page[EscalationOut], responses=documented(401, 403, 422, 503))
def board(
    state: State,
    caller: Annotated[CurrentUser, requires("escalation.read")],
    status: Literal["open", "resolved", "all"] = "open",
    level: Annotated[int | None, Query(ge=1, le=5)] = None,
    entity: Annotated[str | None, Query(max_length=100)] = None,
    track: Track | None = None,
    min_age_hours: Annotated[float | None, Query(ge=0, le=100_000, description="Raised at least this long ago.")]
    = None,
    directive: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    q: Annotated[str | None, Query(max_length=200, description=SEARCH_HELP)] = None,
    sort: Annotated[Literal["level", "due", "age", "entity"],
                    Query(description="level: highest first, then oldest; due: the directive's deadline, soonest "
                                      "first; age: oldest first; entity: by code. Ties by id.")] = "level",
    order: Annotated[Literal["asc", "desc"] | None,
                     Query(description="Reverses or keeps `sort`'s natural direction (asc: lowest level, "
                                       "soonest deadline, newest, entity A-Z).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[EscalationOut]:
    """Escalations the caller may see, highest level and oldest first unless sorted."""
    now = clock.now()
    filters = supervision.BoardFilters(status=status, level=level, entity=entity, track=track,
                                       min_age_hours=min_age_hours, directive=directive, text=q, sort=sort,
                                       descending=None if order is None else order == "desc")
    with state.db.reading() as session:
        rows, total = supervision.search_board(session, caller, filters, limit, offset, now)
        return Page(items=[escalation_out(e, d, now) for e, d in rows], total=total, limit=limit, offset=offset)


def _fields(body: ResolveRequest) -> dict[str, Any]:
    if body.action == "extend":
        if not body.new_deadline:
            raise InvalidInput(N_("extending needs new_deadline"))
        return {"new_deadline": body.new_deadline}
    if body.action == "reassign":
        if not body.entity:
            raise InvalidInput(N_("reassigning needs entity"))
        return {"entity": body.entity}
    if body.action == "close":
        if not body.outcome:
            raise InvalidInput(N_("closing needs an outcome: done or cancelled"))
        return {"outcome": body.outcome}
    if body.action == "escalate" and body.level is not None:
        return {"level": body.level}
    return {}


def _permitted(session: Session, caller: CurrentUser, escalation_id: int, action: str) -> Escalation:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or not access.can_see_escalation(session, caller, escalation):
        raise NotFound(N_("no escalation %(escalation)s"), params={"escalation": str(escalation_id)})
    if not access.can_resolve_escalation(caller, escalation, action):
        raise Forbidden(N_("your role may not do this to this escalation"))
    return escalation


@router.post("/escalations/{escalation_id}/resolve", operation_id="resolveEscalation", response_model=EscalationOut,
             responses=documented(401, 403, 404, 409, 422, 503))
def resolve(escalation_id: EscalationId, body: ResolveRequest, state: State, caller: Caller) -> EscalationOut:
    """Extend, reassign, escalate further, close, or comment (the process is told; the row records it)."""
    fields = _fields(body)
    with state.db.transaction() as session:
        _permitted(session, caller, escalation_id, body.action)
        escalation = supervision.resolve(session, escalation_id, body.action, caller.username, body.note, **fields)
        directive = session.get(Directive, escalation.directive_id) if escalation.directive_id else None
        return escalation_out(escalation, directive)


@router.post("/escalations/resolve", operation_id="resolveEscalations",
             response_model=BulkResolveOut, responses=documented(401, 403, 422, 503))
def resolve_many(body: BulkResolveRequest, state: State, request: Request,
                 caller: Annotated[CurrentUser, requires("escalation.read")]) -> BulkResolveOut:
    """One action on many escalations; each row succeeds or fails on its own, with its reason (in the
    language `Accept-Language` asks for)."""
    language = language_of(request)
    fields = _fields(body)
    ids = list(dict.fromkeys(body.ids))
    results: dict[int, BulkOutcomeOut] = {}
    with state.db.transaction() as session:
        allowed_ids = []
        for escalation_id in ids:
            try:
                _permitted(session, caller, escalation_id, body.action)
                allowed_ids.append(escalation_id)
            except TansiqError as exc:
                results[escalation_id] = _row(escalation_id, False, exc.code, error_text(exc, language))
        for outcome in supervision.resolve_many(session, allowed_ids, body.action, caller.username, body.note,
                                                **fields):
            results[outcome.escalation_id] = _row(outcome.escalation_id, outcome.ok, outcome.code,
                                                  said(outcome.message, language))
    ordered = [results[i] for i in ids]
    succeeded = sum(1 for r in ordered if r.ok)
    return BulkResolveOut(results=ordered, succeeded=succeeded, failed=len(ordered) - succeeded)


def _row(escalation_id: int, ok: bool, code: str, detail: str) -> BulkOutcomeOut:
    """One row of a bulk answer; `status` is what the row alone would have answered."""
    status = 200 if ok else KINDS.get(code, KINDS["invalid-input"])[0]  # as the engine error handler maps it
    return BulkOutcomeOut(id=escalation_id, ok=ok, status=status, detail=detail)
