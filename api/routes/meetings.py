"""Committee meetings: register and edit them, attach their minutes, enter their recommendations as
draft directives, launch every draft at once (all or nothing), read a meeting's page with the open
directives carried forward from earlier meetings, and export its agenda (CSV, XLSX).

The secretariat and administrators manage meetings; every role that reads all directives reads all
meetings; an entity user sees the meetings their entity attended or holds a directive of, and in
them only their own directives (see `engine.directives.meetings`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from api.deps import Caller, CurrentUser, State, requires
from api.problems import MEDIA_TYPE, attachment, content_disposition, documented, problem_response
from api.schemas.common import MAX_ID, Page
from api.schemas.directives import DirectiveOut
from api.schemas.meetings import (
    CarriedDirective,
    EntityName,
    LaunchReportOut,
    LaunchRowOut,
    MeetingCreate,
    MeetingDocumentOut,
    MeetingOut,
    MeetingPageOut,
    MeetingSummary,
    MeetingUpdate,
    RecommendationCreate,
)
from api.views import directive_out, directive_summary, season_years
from engine.directives import access, evidence_store, meetings
from engine.directives.directives import Directive, NewDirective
from engine.directives.meetings import Meeting, MeetingDocument

router = APIRouter(tags=["meetings"])
MeetingId = Annotated[int, Path(ge=1, le=MAX_ID)]
DocumentId = Annotated[int, Path(ge=1, le=MAX_ID)]
FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
          "description": "The file, as an attachment"}}


def meeting_out(meeting: Meeting, years: dict[int, int]) -> MeetingOut:
    return MeetingOut(
        id=meeting.id, season=years.get(meeting.season_id, 0), number=meeting.number, title_ar=meeting.title_ar,
        title_en=meeting.title_en, held_at=meeting.held_at, held_on=meeting.held_on,
        held_on_hijri=meeting.held_on_hijri, chair=meeting.chair, minutes=meeting.minutes,
        attending=[EntityName(code=e.code, name_ar=e.name_ar, name_en=e.name_en) for e in meeting.attendees],
        created_by=meeting.created_by, created_at=meeting.created_at,
    )


def document_out(row: MeetingDocument) -> MeetingDocumentOut:
    return MeetingDocumentOut(id=row.id, kind=row.kind, filename=row.filename, content_type=row.content_type,
                              size=row.size, sha256=row.sha256, uploaded_by=row.uploaded_by,
                              uploaded_at=row.uploaded_at,
                              download_url=f"/api/v1/meetings/{row.meeting_id}/documents/{row.id}")


def page_out(session: Session, page: meetings.MeetingPage) -> MeetingPageOut:
    years = season_years(session)
    return MeetingPageOut(
        **meeting_out(page.meeting, years).model_dump(),
        documents=[document_out(d) for d in page.documents],
        directives=[directive_out(d, years) for d in page.directives],
        carried_forward=[_carried(d, page.meeting_numbers) for d in page.carried_forward],
        drafts=len(page.drafts), can_manage=page.can_manage,
    )


def _carried(directive: Directive, meeting_numbers: dict[int, int]) -> CarriedDirective:
    meeting_id = directive.meeting_id
    assert meeting_id is not None, "a carried-forward directive comes from an earlier meeting"
    return CarriedDirective(**directive_summary(directive).model_dump(), meeting_id=meeting_id,
                            meeting_number=meeting_numbers.get(meeting_id, 0),
                            current_steps=list(directive.current_steps or []))


def launch_out(report: meetings.LaunchReport) -> LaunchReportOut:
    return LaunchReportOut(meeting_id=report.meeting_id, ok=report.ok, launched=report.launched,
                           failed=len(report.failed),
                           rows=[LaunchRowOut(directive_id=r.directive_id, reference=r.reference, title=r.title,
                                              title_en=r.title_en, responsible_entity=r.responsible_entity,
                                              outcome=r.outcome,
                                              error=r.error, code=r.code) for r in report.rows])


@router.get("/meetings", response_model=Page[MeetingSummary], responses=documented(401, 403, 422, 503))
def list_meetings(
    state: State,
    caller: Annotated[CurrentUser, requires("directive.read")],
    season: Annotated[int | None, Query(ge=1343, le=1500, description="Hijri year.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the Arabic or English title.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[MeetingSummary]:
    """The meetings the caller may see, newest first, with how many of their directives the caller sees."""
    with state.db.reading() as session:
        rows, total = meetings.list_meetings(session, caller, season_year=season, text=q, limit=limit,
                                             offset=offset)
        counts = meetings.directive_counts(session, caller, [m.id for m in rows])
        years = season_years(session)
        return Page(items=[MeetingSummary(**meeting_out(m, years).model_dump(), directives=counts[m.id][0],
                                          drafts=counts[m.id][1]) for m in rows],
                    total=total, limit=limit, offset=offset)


@router.post("/meetings", operation_id="createMeeting", response_model=MeetingOut, status_code=201,
             responses=documented(401, 403, 404, 409, 422, 503))
def create(body: MeetingCreate, state: State, caller: Caller) -> MeetingOut:
    """Register a meeting (its date in Hijri or Gregorian) with the entities that attended."""
    meetings.require_manage(caller)
    with state.db.transaction() as session:
        meeting = meetings.create(session, number=body.number, title_ar=body.title_ar, held=body.held,
                                  actor=caller.username, season_year=body.season, title_en=body.title_en,
                                  chair=body.chair, minutes=body.minutes, attending=list(body.attending))
        return meeting_out(meeting, season_years(session))


@router.get("/meetings/{meeting_id}", operation_id="getMeeting",
            response_model=MeetingPageOut, responses=documented(401, 404, 422, 503))
def read(meeting_id: MeetingId, state: State, caller: Caller) -> MeetingPageOut:
    """A meeting's page: its details, minutes files, its directives, and those carried forward."""
    with state.db.reading() as session:
        return page_out(session, meetings.meeting_page(session, meeting_id, caller))


@router.patch("/meetings/{meeting_id}", operation_id="updateMeeting",
              response_model=MeetingOut, responses=documented(401, 403, 404, 422, 503))
def update(meeting_id: MeetingId, body: MeetingUpdate, state: State, caller: Caller) -> MeetingOut:
    changes = body.model_dump(exclude_unset=True)
    with state.db.transaction() as session:
        meetings.visible_meeting(session, caller, meeting_id)
        meetings.require_manage(caller)
        if "attending" in changes:
            changes["attending"] = list(changes["attending"] or [])
        meeting = meetings.update_meeting(session, meeting_id, caller.username, **changes)
        return meeting_out(meeting, season_years(session))


@router.post("/meetings/{meeting_id}/documents", operation_id="attachMeetingDocuments",
             response_model=list[MeetingDocumentOut], status_code=201,
             responses=documented(401, 403, 404, 413, 415, 422, 503))
def attach(meeting_id: MeetingId, files: Annotated[list[UploadFile], File(description="The minutes: PDF, DOCX, "
                                                                                        "XLSX, images or text.")],
           state: State, caller: Caller) -> list[MeetingDocumentOut]:
    """Attach the minutes as files (judged by their bytes, like evidence)."""
    with state.db.transaction() as session:
        meetings.visible_meeting(session, caller, meeting_id)
        meetings.require_manage(caller)
        checked = evidence_store.check_many(((f.filename, f.file) for f in files), state.settings.evidence_limits)
        rows = [meetings.attach_minutes(session, state.settings.home, meeting_id, c, caller.username,
                                        state.settings.files_backend) for c in checked]
        return [document_out(row) for row in rows]


@router.get("/meetings/{meeting_id}/documents/{document_id}", operation_id="downloadMeetingDocument",
            response_class=StreamingResponse,
            responses={**FILE_RESPONSE, **documented(401, 404, 422, 503)})
def download(meeting_id: MeetingId, document_id: DocumentId, state: State, caller: Caller) -> StreamingResponse:
    with state.db.reading() as session:
        meetings.visible_meeting(session, caller, meeting_id)
        row = meetings.document(session, meeting_id, document_id)
        filename, content_type = row.filename, row.content_type
        found = meetings.document_file(session, state.settings.home, row)
    return attachment(state.db, found, content_type, filename)


@router.post("/meetings/{meeting_id}/recommendations", operation_id="addMeetingRecommendation",
             response_model=DirectiveOut, status_code=201,
             responses=documented(401, 403, 404, 409, 422, 503))
def add_recommendation(meeting_id: MeetingId, body: RecommendationCreate, state: State,
                       caller: Caller) -> DirectiveOut:
    """Enter a recommendation of the meeting as a draft directive linked to it."""
    new = NewDirective(
        title=body.title, kind=body.kind, responsible_entity=body.responsible_entity, deadline=body.deadline,
        title_en=body.title_en, body=body.body, source=body.source, reference=body.reference,
        issued_on=body.issued_on, track=body.track, programme_track=body.programme_track, priority=body.priority,
        supporting_entities=list(body.supporting_entities), tags=list(body.tags),
        process_model_key=body.process_model_key,
    )
    with state.db.transaction() as session:
        meetings.visible_meeting(session, caller, meeting_id)
        meetings.require_manage(caller)
        directive = meetings.add_recommendation(session, meeting_id, new, caller.username)
        return directive_out(directive, season_years(session))


@router.post("/meetings/{meeting_id}/launch-all", operation_id="launchMeetingRecommendations",
             response_model=LaunchReportOut,
             responses={**documented(401, 403, 404, 409, 503),
                        422: {"description": "Nothing was launched: one or more drafts failed. The problem's "
                                             "`errors` name them; `rows` is the report of every draft.",
                              "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}})
def launch_all(meeting_id: MeetingId, request: Request, state: State, caller: Caller) -> LaunchReportOut | JSONResponse:
    """Launch every draft directive of the meeting, all or nothing: if any fails, none is launched and the
    answer is a 422 problem listing each failure (and every draft's outcome in `rows`)."""
    with state.db.transaction() as session:
        meetings.visible_meeting(session, caller, meeting_id)
        meetings.require_manage(caller)
        access.require(caller, "directive.launch")
        report = meetings.launch_all(session, meeting_id, caller.username)
        out = launch_out(report)
    if report.ok:
        return out
    response = problem_response(
        "invalid-input", f"nothing was launched: {len(report.failed)} of {len(report.rows)} drafts failed",
        instance=request.url.path, code="launch-refused",
        errors=[{"field": row.reference, "message": row.error or ""} for row in report.failed])
    body = json.loads(bytes(response.body))
    body["rows"] = [row.model_dump() for row in out.rows]
    return JSONResponse(body, status_code=422, media_type=MEDIA_TYPE)


@router.get("/meetings/{meeting_id}/agenda", operation_id="getMeetingAgenda", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument."
                                                          "spreadsheetml.sheet": {}},
                             "description": "The agenda, as an attachment"}, **documented(401, 404, 422, 503)})
def agenda(meeting_id: MeetingId, state: State, caller: Caller,
           format: Literal["csv", "xlsx"] = "xlsx", lang: Literal["ar", "en"] = "ar") -> Response:
    """The meeting's agenda: its own directives and the open ones carried forward from earlier meetings."""
    with state.db.reading() as session:
        page = meetings.meeting_page(session, meeting_id, caller)
        content = meetings.agenda_csv(page, lang) if format == "csv" else meetings.agenda_xlsx(page, lang)
        number = page.meeting.number
    media = "text/csv; charset=utf-8" if format == "csv" else (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(content, media_type=media, headers={
        "Content-Disposition": content_disposition(f"agenda-{number}.{format}"), "Cache-Control": "private, no-store"})
