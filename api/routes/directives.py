"""Directives: register (draft or launch at once), search the register, read one with its steps,
escalations, evidence and timeline, launch, cancel, ask for more time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import Caller, CurrentUser, State, requires
from api.problems import documented
from api.schemas.common import MAX_ID, Page
from api.schemas.directives import (
    CancelRequest,
    DirectiveCreate,
    DirectiveDetail,
    DirectiveLaunched,
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
    open_steps_out,
    season_year_of,
    season_years,
    step_out,
)
from engine.directives import access, directives, evidence_store
from engine.directives.directives import Directive, DirectiveFilters, NewDirective
from engine.foundation import clock
from engine.foundation.errors import Forbidden
from engine.storage import audit
from engine.work import instances
from engine.work.escalations import Escalation
from engine.work.work_items import OPEN, WorkItem

router = APIRouter(tags=["directives"])
DirectiveId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/directives", operation_id="listDirectives",
            response_model=Page[DirectiveOut], responses=documented(401, 403, 422, 503))
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
    filters = DirectiveFilters(status=status, entity=entity, track=track, kind=kind, priority=priority, season=season,
                               overdue=overdue, escalated=escalated, text=q)
    with state.db.reading() as session:
        rows, total = directives.search(session, caller, filters, f"-{sort}" if order == "desc" else sort,
                                        limit, offset)
        years = season_years(session)
        return Page(items=[directive_out(d, years) for d in rows], total=total, limit=limit, offset=offset)


@router.post("/directives", operation_id="createDirective", response_model=DirectiveLaunched, status_code=201,
             responses=documented(401, 403, 404, 409, 422, 503))
def create(body: DirectiveCreate, state: State,
           caller: Annotated[CurrentUser, requires("directive.create")]) -> DirectiveLaunched:
    """Register a directive as a draft; with `"launch": true` its process starts at once and the answer
    carries the steps it opened (`open_steps`, with their forms)."""
    new = NewDirective(
        title=body.title, kind=body.kind, responsible_entity=body.responsible_entity, deadline=body.deadline,
        title_en=body.title_en, body=body.body, source=body.source, reference=body.reference,
        meeting_id=body.meeting_id, issued_on=body.issued_on, track=body.track, programme_track=body.programme_track,
        priority=body.priority, supporting_entities=list(body.supporting_entities), tags=list(body.tags),
        season_year=body.season, process_model_key=body.process_model_key,
    )
    with state.db.transaction() as session:
        directive = directives.create(session, new, caller.username, launch_now=body.launch)
        return _launched(session, caller, directive)


def _launched(session: Session, caller: CurrentUser, directive: Directive) -> DirectiveLaunched:
    return DirectiveLaunched(**directive_out(directive, season_year_of(session, directive)).model_dump(),
                             open_steps=open_steps_out(session, caller, directive.instance_id))


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


@router.get("/directives/{directive_id}", operation_id="getDirective",
            response_model=DirectiveDetail, responses=documented(401, 404, 422, 503))
def read(directive_id: DirectiveId, state: State, caller: Caller) -> DirectiveDetail:
    """One directive with its current steps, escalations, evidence and timeline (from the audit trail)."""
    with state.db.reading() as session:
        return detail_of(session, access.visible_directive(session, caller, directive_id))


@router.post("/directives/{directive_id}/launch", operation_id="launchDirective", response_model=DirectiveLaunched,
             responses=documented(401, 403, 404, 409, 422, 503))
def launch(directive_id: DirectiveId, state: State, caller: Caller) -> DirectiveLaunched:
    """Start a draft directive's process; the answer carries the steps it opened (`open_steps`)."""
    with state.db.transaction() as session:
        access.visible_directive(session, caller, directive_id)
        access.require(caller, "directive.launch")
        directive = directives.launch(session, directive_id, caller.username)
        return _launched(session, caller, directive)


@router.post("/directives/{directive_id}/cancel", operation_id="cancelDirective", response_model=DirectiveOut,
             responses=documented(401, 403, 404, 409, 422, 503))
def cancel(directive_id: DirectiveId, body: CancelRequest, state: State, caller: Caller) -> DirectiveOut:
    with state.db.transaction() as session:
        access.visible_directive(session, caller, directive_id)
        access.require(caller, "directive.cancel")
        directive = directives.cancel(session, directive_id, caller.username, body.reason)
        session.refresh(directive)
        return directive_out(directive, season_years(session))


@router.post("/directives/{directive_id}/extension-request", operation_id="requestDirectiveExtension",
             response_model=DirectiveOut, status_code=202,
             responses=documented(401, 403, 404, 409, 422, 503))
def extension_request(directive_id: DirectiveId, body: ExtensionRequest, state: State,
                      caller: Caller) -> DirectiveOut:
    """The responsible entity asks for a later deadline; the process routes it to a supervisor."""
    with state.db.transaction() as session:
        directive = access.visible_directive(session, caller, directive_id)
        if not access.can_request_extension(session, caller, directive):
            raise Forbidden("only the responsible entity asks for more time")
        directive = directives.request_extension(session, directive_id, caller.username, body.new_deadline,
                                                 body.reason)
        return directive_out(directive, season_years(session))
