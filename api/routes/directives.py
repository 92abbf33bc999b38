"""Directives: register (draft or launch at once), search the register, read one with its steps,
escalations, evidence and timeline, launch, cancel, ask for more time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.orm import Session

from api.deps import Caller, CurrentUser, State, requires
from api.problems import documented
from api.schemas.common import MAX_ID, Page
from api.schemas.directives import (
    CancelRequest,
    DirectiveCreate,
    DirectiveDetail,
    DirectiveOut,
    ExtensionRequest,
    Kind,
    Priority,
    Status,
    Track,
)
from api.views import (
    audit_out,
    directive_out,
    escalation_out,
    evidence_out,
    season_years,
    step_out,
)
from engine import access, audit, clock, directives, evidence_store, instances
from engine.directives import Directive, NewDirective, directive_supporting_entity
from engine.entities import Entity
from engine.errors import InvalidInput
from engine.escalations import Escalation
from engine.seasons import Season
from engine.work_items import OPEN, WorkItem

router = APIRouter(tags=["directives"])
DirectiveId = Annotated[int, Path(ge=1, le=MAX_ID)]
PRIORITY_RANK = case((Directive.priority == "urgent", 3), (Directive.priority == "high", 2), else_=1)
SORTS = {
    "deadline": Directive.deadline_at,
    "created": Directive.created_at,
    "priority": PRIORITY_RANK,
    "reference": Directive.reference,
}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("/directives", response_model=Page[DirectiveOut], responses=documented(401, 403, 422, 503))
def search(
    state: State,
    caller: Annotated[CurrentUser, requires("directive.read")],
    status: Status | None = None,
    entity: Annotated[str | None, Query(max_length=50, description="Responsible or supporting entity code.")] = None,
    track: Track | None = None,
    kind: Kind | None = None,
    priority: Priority | None = None,
    season: Annotated[int | None, Query(ge=1343, le=1500, description="Hijri year.")] = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the reference or title.")] = None,
    sort: Literal["deadline", "created", "priority", "reference"] = "created",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[DirectiveOut]:
    """The directive register, only what the caller may see, filtered, sorted and paged."""
    now = clock.now()
    query = access.visible_directives(select(Directive), caller)
    if status is not None:
        query = query.where(Directive.status == status)
    if entity is not None:
        entity_id = select(Entity.id).where(Entity.code == entity).scalar_subquery()
        supported = select(directive_supporting_entity.c.directive_id).where(
            directive_supporting_entity.c.entity_id == entity_id)
        query = query.where(or_(Directive.responsible_entity_id == entity_id, Directive.id.in_(supported)))
    for column, value in ((Directive.track, track), (Directive.kind, kind), (Directive.priority, priority)):
        if value is not None:
            query = query.where(column == value)
    if season is not None:
        query = query.where(Directive.season_id == select(Season.id).where(Season.hijri_year == season)
                            .scalar_subquery())
    is_overdue = and_(Directive.status == directives.ACTIVE, Directive.current_due_at.is_not(None),
                      Directive.current_due_at < now)
    if overdue is True:
        query = query.where(is_overdue)
    elif overdue is False:
        query = query.where(not_(is_overdue))
    if escalated is True:
        query = query.where(Directive.escalation_level > 0)
    elif escalated is False:
        query = query.where(Directive.escalation_level == 0)
    if q is not None and "\x00" in q:
        raise InvalidInput("the search text may not contain NUL characters")
    text = (q or "").strip()
    if text:
        pattern = _like(text)
        query = query.where(or_(Directive.reference.ilike(pattern, escape="\\"),
                                Directive.title.ilike(pattern, escape="\\"),
                                Directive.title_en.ilike(pattern, escape="\\")))
    column = SORTS[sort]
    ordering = [column.asc() if order == "asc" else column.desc(),
                Directive.id.asc() if order == "asc" else Directive.id.desc()]
    with state.db.reading() as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = session.scalars(query.order_by(*ordering).limit(limit).offset(offset)).all()
        years = season_years(session)
        return Page(items=[directive_out(d, years) for d in rows], total=total, limit=limit, offset=offset)


@router.post("/directives", response_model=DirectiveOut, status_code=201,
             responses=documented(401, 403, 404, 409, 422, 503))
def create(body: DirectiveCreate, state: State,
           caller: Annotated[CurrentUser, requires("directive.create")]) -> DirectiveOut:
    """Register a directive as a draft; with `"launch": true` its process starts at once."""
    new = NewDirective(
        title=body.title, kind=body.kind, responsible_entity=body.responsible_entity, deadline=body.deadline,
        title_en=body.title_en, body=body.body, source=body.source, reference=body.reference,
        meeting_id=body.meeting_id, issued_on=body.issued_on, track=body.track, programme_track=body.programme_track,
        priority=body.priority, supporting_entities=list(body.supporting_entities), tags=list(body.tags),
        season_year=body.season, process_model_key=body.process_model_key,
    )
    with state.db.transaction() as session:
        directive = directives.create(session, new, caller.username, launch_now=body.launch)
        return directive_out(directive, season_years(session))


def detail_of(session: Session, directive: Directive) -> DirectiveDetail:
    steps: list[WorkItem] = []
    subjects = [directives.subject(directive.id)]
    if directive.instance_id is not None:
        steps = list(session.scalars(select(WorkItem).where(WorkItem.instance_id == directive.instance_id,
                                                            WorkItem.status == OPEN).order_by(WorkItem.id)))
        subjects.append(instances.subject(directive.instance_id))
    escalations = session.scalars(select(Escalation).where(Escalation.directive_id == directive.id)
                                  .order_by(Escalation.id)).all()
    now = clock.now()
    return DirectiveDetail(
        **directive_out(directive, season_years(session)).model_dump(),
        steps=[step_out(item) for item in steps],
        escalations=[escalation_out(e, None, now) for e in escalations],
        evidence=[evidence_out(row) for row in evidence_store.of_directive(session, directive.id)],
        timeline=[audit_out(event) for event in audit.timeline(session, *subjects)],
    )


@router.get("/directives/{directive_id}", response_model=DirectiveDetail, responses=documented(401, 404, 422, 503))
def read(directive_id: DirectiveId, state: State, caller: Caller) -> DirectiveDetail:
    """One directive with its current steps, escalations, evidence and timeline (from the audit trail)."""
    with state.db.reading() as session:
        return detail_of(session, access.visible_directive(session, caller, directive_id))


@router.post("/directives/{directive_id}/launch", response_model=DirectiveOut,
             responses=documented(401, 403, 404, 409, 422, 503))
def launch(directive_id: DirectiveId, state: State, caller: Caller) -> DirectiveOut:
    with state.db.transaction() as session:
        access.visible_directive(session, caller, directive_id)
        access.require(caller, "directive.launch")
        directive = directives.launch(session, directive_id, caller.username)
        return directive_out(directive, season_years(session))


@router.post("/directives/{directive_id}/cancel", response_model=DirectiveOut,
             responses=documented(401, 403, 404, 409, 422, 503))
def cancel(directive_id: DirectiveId, body: CancelRequest, state: State, caller: Caller) -> DirectiveOut:
    with state.db.transaction() as session:
        access.visible_directive(session, caller, directive_id)
        access.require(caller, "directive.cancel")
        directive = directives.cancel(session, directive_id, caller.username, body.reason)
        session.refresh(directive)
        return directive_out(directive, season_years(session))


@router.post("/directives/{directive_id}/extension-request", response_model=DirectiveOut, status_code=202,
             responses=documented(401, 403, 404, 409, 422, 503))
def extension_request(directive_id: DirectiveId, body: ExtensionRequest, state: State,
                      caller: Caller) -> DirectiveOut:
    """The responsible entity asks for a later deadline; the process routes it to a supervisor."""
    with state.db.transaction() as session:
        directive = access.visible_directive(session, caller, directive_id)
        if not access.can_request_extension(session, caller, directive):
            raise access.Forbidden("only the responsible entity asks for more time")
        directive = directives.request_extension(session, directive_id, caller.username, body.new_deadline,
                                                 body.reason)
        return directive_out(directive, season_years(session))
