"""Committee meetings (issue 9): the list per season, the meeting form, and the meeting's page with its
minutes files, its recommendations (draft directives), the open directives carried forward from earlier
meetings, the agenda export, and "launch all" with its per-row report. Same rules as the API: the
secretariat and administrators manage; readers read; an entity user sees only what concerns them."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from api.problems import attachment, content_disposition
from api.web import i18n
from api.web.core import WebRoute, form_errors, redirect, render
from api.web.forms import deadline_from_form
from api.web.labels import N_
from api.web.session import form_of, require_user
from engine.bpmn import process_models
from engine.calendar.business_calendar import gregorian_to_hijri, hijri_to_gregorian
from engine.calendar.durations import RIYADH
from engine.calendar.seasons import Season
from engine.directives import access, directives, evidence_store, meetings
from engine.directives.directives import KINDS, PRIORITIES, PROGRAMME_TRACKS, TRACKS, NewDirective
from engine.foundation import clock
from engine.foundation.errors import FieldIssue, FieldProblems, InvalidInput, NotFound, TansiqError
from engine.people import entities
from engine.storage.db import MAX_ID

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50
MESSAGES = {
    "meeting_saved": N_("The meeting was saved."),
    "minutes_attached": N_("The minutes were attached."),
    "recommendation_added": N_("The recommendation was added as a draft directive."),
}
OUTCOME_WORDS = {meetings.LAUNCHED: N_("Launched"), meetings.FAILED: N_("Failed"),
                 meetings.NOT_LAUNCHED: N_("Not launched")}


def has_time(moment: datetime) -> bool:
    """A meeting typed as a day (no time) is held at midnight, Riyadh: show its date alone."""
    return moment.astimezone(RIYADH).time() != time(0)


def _flash(request: Request) -> dict[str, str]:
    """This module's own ?msg= texts (the shared ones are in api.web.core)."""
    text = MESSAGES.get(request.query_params.get("msg") or "")
    return {"message": text} if text else {}


def _checked_id(meeting_id: int) -> int:
    if not 0 < meeting_id <= MAX_ID:
        raise NotFound(N_("no meeting %(meeting)s"), params={"meeting": str(meeting_id)})
    return meeting_id


def _manager(request: Request) -> Any:
    user = require_user(request)
    meetings.require_manage(user)
    return user


# --- the list ---------------------------------------------------------------------------------------------

@router.get("/meetings")
def meeting_list(request: Request, season: str = "", q: str = "") -> Response:
    user = require_user(request)
    access.require(user, "directive.read")
    year = int(season) if season.isdigit() and 1343 <= int(season) <= 1500 else None
    wanted = q.strip()[:200] if "\x00" not in q else ""
    with request.app.state.tansiq.db.reading() as session:
        rows, total = meetings.list_meetings(session, user, season_year=year, text=wanted, limit=PAGE_SIZE)
        counts = meetings.directive_counts(session, user, [m.id for m in rows])
        seasons_list = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
    return render(request, "meetings.html", {"rows": rows, "total": total, "counts": counts, "season": year,
                                             "q": wanted, "seasons": seasons_list, "has_time": has_time,
                                             **_flash(request)})


# --- the meeting form -------------------------------------------------------------------------------------

def _form_context(session: Any) -> dict[str, Any]:
    return {"entities": [e for e in entities.list_entities(session) if e.active],
            "seasons": list(session.scalars(select(Season).order_by(Season.hijri_year.desc()))),
            "hijri_months": i18n.HIJRI_MONTHS}


def _values_of(meeting: meetings.Meeting) -> dict[str, Any]:
    """The form's fields for an existing meeting (its date given as Gregorian, and its time unless midnight)."""
    local = meeting.held_at.astimezone(RIYADH)
    year, month, day = gregorian_to_hijri(local.date())
    return {"number": str(meeting.number), "title_ar": meeting.title_ar, "title_en": meeting.title_en or "",
            "chair": meeting.chair or "", "minutes": meeting.minutes or "", "held_mode": "gregorian",
            "held_date": local.date().isoformat(), "held_time": "" if local.time() == time(0) else f"{local:%H:%M}",
            "held_hijri_year": year, "held_hijri_month": month, "held_hijri_day": day,
            "attending": [e.code for e in meeting.attendees]}


def _form_values(form: Any) -> dict[str, Any]:
    names = ("number", "season", "title_ar", "title_en", "chair", "minutes", "held_mode", "held_date", "held_time",
             "held_hijri_day", "held_hijri_month", "held_hijri_year")
    values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in names}
    values["attending"] = [v for v in form.getlist("attending") if isinstance(v, str)]
    return values


def held_from_form(values: dict[str, Any]) -> date | datetime:
    """The meeting's day typed in Gregorian or Hijri (Umm al-Qura), with its Riyadh time when given."""
    if values.get("held_mode") == "hijri":
        parts = [values.get(f"held_hijri_{p}", "") for p in ("year", "month", "day")]
        if not all(str(p).isdigit() for p in parts):
            raise _on("held_hijri_day", N_("The Hijri date is a day, a month and a year in numbers."))
        try:
            day = hijri_to_gregorian(*(int(p) for p in parts))
        except InvalidInput as exc:
            raise _on("held_hijri_day", exc.message_id, **exc.params) from None
    else:
        if not values.get("held_date"):
            raise _on("held_date", N_("Choose the meeting's date."))
        try:
            day = date.fromisoformat(values.get("held_date") or "")
        except ValueError:
            raise _on("held_date", N_("This is not a date: %(text)s"), text=values.get("held_date")) from None
    if not values.get("held_time"):
        return day
    try:
        return datetime.combine(day, time.fromisoformat(values["held_time"]), tzinfo=RIYADH)
    except ValueError:
        raise _on("held_time", N_("This is not a time of day: %(text)s"), text=values["held_time"]) from None


def _on(name: str, message_id: str, **params: Any) -> InvalidInput:
    return InvalidInput(message_id, params=params, fields=[FieldIssue(name, "format", message_id, params)])


def _number(values: dict[str, Any]) -> int:
    if not values["number"].isdigit() or len(values["number"]) > 6:
        raise _on("number", N_("a meeting number is a positive whole number"))
    return int(values["number"])


MEETING_TARGETS = {"number": ("number", N_("Meeting number")), "title_ar": ("title_ar", N_("Title (Arabic)")),
                   "held_date": ("held-date", N_("Date (Gregorian)")),
                   "held_hijri_day": ("held-hday", N_("Date (Hijri, Umm al-Qura)")),
                   "held_time": ("held-time", N_("Time (Riyadh, optional)"))}


def _meeting_checks(values: dict[str, Any], *, new: bool) -> tuple[int, date | datetime]:
    """The number, the Arabic title and the date, refused all at once."""
    problems = FieldProblems()
    number, held = 0, None
    if new:
        with problems.checking("number"):
            number = _number(values)
    if not values["title_ar"]:
        problems.add("title_ar", "required", N_("Type the meeting's title in Arabic."))
    with problems.checking("held_date"):
        held = held_from_form(values)
    problems.raise_if_any()
    assert held is not None
    return number, held


def _meeting_form(request: Request, values: dict[str, Any], *, meeting_id: int | None = None,
                  error: TansiqError | None = None) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        context = _form_context(session)
    return render(request, "meeting_form.html", {
        **context, "values": values, "meeting_id": meeting_id,
        "error": form_errors(request, error, MEETING_TARGETS) if error else None}, status=422 if error else 200)


@router.get("/meetings/new")
def new_meeting(request: Request) -> Response:
    _manager(request)
    year, month, _day = gregorian_to_hijri(i18n.local(clock.now()).date())
    return _meeting_form(request, {"held_mode": "gregorian", "held_hijri_year": year, "held_hijri_month": month,
                                   "attending": []})


@router.post("/meetings/new")
async def create_meeting(request: Request) -> Response:
    user = _manager(request)
    values = _form_values(await form_of(request))
    try:
        season = int(values["season"]) if values["season"].isdigit() else None
        number, held = _meeting_checks(values, new=True)
        with request.app.state.tansiq.db.transaction() as session:
            meeting = meetings.create(session, number=number, title_ar=values["title_ar"],
                                      held=held, actor=user.username, season_year=season,
                                      title_en=values["title_en"] or None, chair=values["chair"] or None,
                                      minutes=values["minutes"] or None, attending=values["attending"])
            meeting_id = meeting.id
    except TansiqError as exc:
        return _meeting_form(request, values, error=exc)
    return redirect(f"/meetings/{meeting_id}?msg=meeting_saved")


@router.get("/meetings/{meeting_id}/edit")
def edit_meeting(request: Request, meeting_id: int) -> Response:
    user = require_user(request)
    with request.app.state.tansiq.db.reading() as session:
        meeting = meetings.visible_meeting(session, user, _checked_id(meeting_id))
        meetings.require_manage(user)
        values = _values_of(meeting)
    return _meeting_form(request, values, meeting_id=meeting_id)


@router.post("/meetings/{meeting_id}/edit")
async def update_meeting(request: Request, meeting_id: int) -> Response:
    user = require_user(request)
    values = _form_values(await form_of(request))
    try:
        held = _meeting_checks(values, new=False)[1]
        with request.app.state.tansiq.db.transaction() as session:
            meetings.visible_meeting(session, user, _checked_id(meeting_id))
            meetings.require_manage(user)
            meetings.update_meeting(session, meeting_id, user.username, title_ar=values["title_ar"],
                                    title_en=values["title_en"] or None, held=held,
                                    chair=values["chair"] or None, minutes=values["minutes"] or None,
                                    attending=values["attending"])
    except TansiqError as exc:
        if exc.code in ("not-found", "forbidden"):
            raise
        return _meeting_form(request, values, meeting_id=meeting_id, error=exc)
    return redirect(f"/meetings/{meeting_id}?msg=meeting_saved")


# --- the meeting's page -----------------------------------------------------------------------------------

def _meeting_page(request: Request, meeting_id: int, *, status: int = 200, **extra: Any) -> Response:
    user = require_user(request)
    with request.app.state.tansiq.db.reading() as session:
        page = meetings.meeting_page(session, _checked_id(meeting_id), user)
        season = session.get(Season, page.meeting.season_id)
        every_entity = entities.list_entities(session)
        context = {"page": page, "meeting": page.meeting, "season": season, "overdue": directives.overdue,
                   "entities": [e for e in every_entity if e.active], "names": {e.code: e for e in every_entity},
                   "models": process_models.list_models(session), "kinds": KINDS, "tracks": TRACKS,
                   "programme_tracks": PROGRAMME_TRACKS, "priorities": PRIORITIES,
                   "hijri_months": i18n.HIJRI_MONTHS, "outcome_words": OUTCOME_WORDS,
                   "has_time": has_time, "may_launch": page.can_manage
                   and access.allowed(user, "directive.launch") and bool(page.drafts)}
    year, month, _day = gregorian_to_hijri(i18n.local(clock.now()).date())
    values = extra.pop("values", None) or {"kind": "recommendation", "deadline_mode": "gregorian",
                                            "deadline_hijri_year": year, "deadline_hijri_month": month}
    return render(request, "meeting.html", {**context, "values": values, **_flash(request), **extra},
                  status=status)


@router.get("/meetings/{meeting_id}")
def meeting_page(request: Request, meeting_id: int) -> Response:
    return _meeting_page(request, meeting_id)


@router.post("/meetings/{meeting_id}/launch-all")
async def launch_all(request: Request, meeting_id: int) -> Response:
    """Every draft of the meeting, all or nothing; the page then shows what happened to each draft."""
    user = require_user(request)
    await form_of(request)
    with request.app.state.tansiq.db.transaction() as session:
        meetings.visible_meeting(session, user, _checked_id(meeting_id))
        meetings.require_manage(user)
        access.require(user, "directive.launch")
        report = meetings.launch_all(session, meeting_id, user.username)
    return _meeting_page(request, meeting_id, report=report, status=200 if report.ok else 422)


def _recommendation(form: Any) -> tuple[NewDirective, dict[str, Any]]:
    values: dict[str, Any] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    values["supporting"] = [v for v in form.getlist("supporting") if isinstance(v, str)]
    tags = [t.strip() for t in str(form.get("tags") or "").replace("،", ",").split(",") if t.strip()]
    title = str(form.get("title") or "").strip()
    if not title:
        raise InvalidInput("a recommendation needs a title")
    new = NewDirective(
        title=title, title_en=str(form.get("title_en") or "").strip() or None,
        kind=str(form.get("kind") or "recommendation"), responsible_entity=str(form.get("responsible_entity") or ""),
        deadline=deadline_from_form(form), body=str(form.get("body") or "").strip() or None,
        track=str(form.get("track") or "business"), programme_track=str(form.get("programme_track") or "none"),
        priority=str(form.get("priority") or "normal"), supporting_entities=values["supporting"], tags=tags,
        source=str(form.get("source") or "").strip() or None,
        process_model_key=str(form.get("process_model_key") or "") or None)
    return new, values


@router.post("/meetings/{meeting_id}/recommendations")
async def add_recommendation(request: Request, meeting_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    values: dict[str, Any] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    try:
        with request.app.state.tansiq.db.transaction() as session:
            meetings.visible_meeting(session, user, _checked_id(meeting_id))
            meetings.require_manage(user)
            new, values = _recommendation(form)
            meetings.add_recommendation(session, meeting_id, new, user.username)
    except TansiqError as exc:
        if exc.code in ("not-found", "forbidden"):
            raise
        return _meeting_page(request, meeting_id, status=422, values=values, rec_error=form_errors(request, exc))
    return redirect(f"/meetings/{meeting_id}?msg=recommendation_added#recommendations")


# --- minutes files and the agenda ---------------------------------------------------------------------------

@router.post("/meetings/{meeting_id}/documents")
async def attach_minutes(request: Request, meeting_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    state = request.app.state.tansiq
    with state.db.transaction() as session:
        meetings.visible_meeting(session, user, _checked_id(meeting_id))
        meetings.require_manage(user)
        if not files:
            raise InvalidInput("choose one or more files")
        checked = evidence_store.check_many(((f.filename, f.file) for f in files), state.settings.evidence_limits)
        for item in checked:
            meetings.attach_minutes(session, state.settings.home, meeting_id, item, user.username,
                                    state.settings.files_backend)
    return redirect(f"/meetings/{meeting_id}?msg=minutes_attached#minutes")


@router.get("/meetings/{meeting_id}/documents/{document_id}")
def download_minutes(request: Request, meeting_id: int, document_id: int) -> Response:
    user = require_user(request)
    state = request.app.state.tansiq
    with state.db.reading() as session:
        meetings.visible_meeting(session, user, _checked_id(meeting_id))
        row = meetings.document(session, meeting_id, _checked_id(document_id))
        filename, content_type = row.filename, row.content_type
        found = meetings.document_file(session, state.settings.home, row)
    return attachment(state.db, found, content_type, filename)


AGENDA_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("/meetings/{meeting_id}/agenda.{extension}")
def agenda(request: Request, meeting_id: int, extension: str, lang: str = "ar") -> Response:
    user = require_user(request)
    if extension not in AGENDA_TYPES or lang not in i18n.LANGUAGES:
        raise NotFound("no such agenda")
    with request.app.state.tansiq.db.reading() as session:
        page = meetings.meeting_page(session, _checked_id(meeting_id), user)
        content = meetings.agenda_csv(page, lang) if extension == "csv" else meetings.agenda_xlsx(page, lang)
        number = page.meeting.number
    return Response(content, media_type=AGENDA_TYPES[extension], headers={
        "Content-Disposition": content_disposition(f"agenda-{number}.{extension}"),
        "Cache-Control": "private, no-store"})
