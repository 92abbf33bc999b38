"""The secretariat's pages: the directive register (filters, search, paging, CSV export), the
new-directive form (draft or launch), and the directive page (diagram, steps, escalations, evidence,
timeline, and the actions the viewer's role allows)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.web import i18n
from api.web.core import (
    FormErrors,
    WebRoute,
    form_errors,
    gettext_for,
    is_htmx,
    language_of,
    on_fields,
    redirect,
    render,
)
from api.web.forms import deadline_from_form, deadline_targets
from api.web.labels import label
from api.web.pages import insight
from api.web.pages.work import EXTENSION_TARGETS, refused_step
from api.web.session import form_of, require_user
from engine.bpmn import process_models
from engine.bpmn.bpmn_runtime import StepName
from engine.calendar.seasons import Season
from engine.directives import access, directives, evidence_store
from engine.directives.directives import (
    KINDS,
    PRIORITIES,
    PROGRAMME_TRACKS,
    SORTS,
    STATUSES,
    TRACKS,
    Directive,
    DirectiveFilters,
    NewDirective,
)
from engine.directives.meetings import Meeting
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, FieldProblems, Forbidden, InvalidInput, NotFound, TansiqError
from engine.foundation.spreadsheets import safe_row
from engine.insight import bottlenecks
from engine.insight.bottlenecks import HeatFilter
from engine.people import entities
from engine.storage import audit
from engine.work import instances
from engine.work.escalations import Escalation
from engine.work.work_items import OPEN, WorkItem

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 25
EXPORT_LIMIT = 10_000
FILTERS = ("status", "entity", "track", "kind", "priority", "overdue", "escalated", "q", "sort", "order")


def _filters(request: Request) -> dict[str, str]:
    """The register's filters from the query string, only known values kept (for links and forms)."""
    raw = {name: (request.query_params.get(name) or "").strip()[:200] for name in FILTERS}
    allowed = {"status": STATUSES, "track": TRACKS, "kind": KINDS, "priority": PRIORITIES,
               "overdue": ("yes", "no"), "escalated": ("yes", "no"), "sort": SORTS, "order": ("asc", "desc")}
    return {k: v for k, v in raw.items() if v and (k not in allowed or v in allowed[k])}


def _search(session: Session, user: Any, filters: dict[str, str], limit: int, offset: int
            ) -> tuple[list[Directive], int]:
    """`engine.directives.directives.search`: only what the user may see, filtered and sorted."""
    yes_no = {"yes": True, "no": False}
    chosen = DirectiveFilters(
        status=filters.get("status"), entity=filters.get("entity"), track=filters.get("track"),
        kind=filters.get("kind"), priority=filters.get("priority"), overdue=yes_no.get(filters.get("overdue", "")),
        escalated=yes_no.get(filters.get("escalated", "")), text=filters.get("q"))
    sort = ("" if filters.get("order") == "asc" else "-") + filters.get("sort", "created")
    return directives.search(session, user, chosen, sort=sort, limit=limit, offset=offset)


@router.get("/directives")
def register(request: Request, page: int = 1) -> Response:
    user = require_user(request)
    access.require(user, "directive.read")
    filters = _filters(request)
    page = max(1, min(page, 100_000))
    state = request.app.state.tansiq
    with state.db.reading() as session:
        rows, total = _search(session, user, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        entity_list = entities.list_entities(session)
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    context = {"rows": rows, "total": total, "page": page, "pages": pages, "filters": filters,
               "entities": entity_list, "statuses": STATUSES, "tracks": TRACKS, "kinds": KINDS,
               "priorities": PRIORITIES, "now": clock.now(), "query_without_page": _query(filters)}
    template = "partials/register_results.html" if is_htmx(request) else "register.html"
    return render(request, template, context)


def _query(filters: dict[str, str], **extra: Any) -> str:
    from urllib.parse import urlencode

    return urlencode({**filters, **{k: v for k, v in extra.items() if v is not None}})


@router.get("/directives/export.csv")
def export(request: Request) -> Response:
    user = require_user(request)
    access.require(user, "directive.read")
    filters = _filters(request)
    language = language_of(request, user)
    _ = gettext_for(request)
    state = request.app.state.tansiq
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(safe_row([_("Reference"), _("Title"), _("Kind"), _("Status"), _("Priority"), _("Track"),
                              _("Responsible entity"), _("Deadline (Hijri / Gregorian, Riyadh time)"),
                              _("Deadline (ISO)"), _("Overdue"), _("Escalation level")]))
    with state.db.reading() as session:
        for row in _search(session, user, filters, EXPORT_LIMIT, 0)[0]:
            entity = row.responsible_entity
            writer.writerow(safe_row([  # titles and names are people's text: never a live formula
                row.reference, (row.title_en or row.title) if language == "en" else row.title,
                _(label("kind", row.kind)), _(label("status", row.status)), _(label("priority", row.priority)),
                _(label("track", row.track)), entity.name_en if language == "en" else entity.name_ar,
                i18n.plain_both_calendars(row.deadline_at, "en" if language == "en" else "ar"),
                row.deadline_at.isoformat(), _("yes") if directives.overdue(row) else _("no"),
                row.escalation_level or 0,
            ]))
    stamp = i18n.local(clock.now()).strftime("%Y%m%d-%H%M")
    return Response("\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="directives-{stamp}.csv"',
                             "Cache-Control": "no-store"})


# --- new directive --------------------------------------------------------------------------------

def _choices(session: Session) -> dict[str, Any]:
    models = [m for m in process_models.list_models(session)]
    seasons_list = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
    meetings = list(session.scalars(select(Meeting).order_by(Meeting.id.desc()).limit(50)))
    return {"entities": [e for e in entities.list_entities(session) if e.active], "models": models,
            "seasons": seasons_list, "meetings": meetings, "kinds": KINDS, "tracks": TRACKS,
            "programme_tracks": PROGRAMME_TRACKS, "priorities": PRIORITIES,
            "hijri_months": i18n.HIJRI_MONTHS}


def _today_hijri() -> tuple[int, int, int]:
    from engine.calendar.business_calendar import gregorian_to_hijri

    return gregorian_to_hijri(i18n.local(clock.now()).date())


@router.get("/directives/new")
def new_form(request: Request) -> Response:
    user = require_user(request)
    access.require(user, "directive.create")
    with request.app.state.tansiq.db.reading() as session:
        context = _choices(session)
    year, month, _day = _today_hijri()
    return render(request, "directive_new.html", {**context, "values": {"deadline_mode": "gregorian",
                                                                          "deadline_hijri_year": year,
                                                                          "deadline_hijri_month": month}})


NEW_DIRECTIVE_TARGETS = {
    "title": ("title", N_("Title (Arabic)")), "title_en": ("title_en", N_("Title (English, optional)")),
    "body": ("body", N_("Text of the directive")), "kind": ("kind", N_("Kind")),
    "priority": ("priority", N_("Priority")), "track": ("track", N_("Track")),
    "programme_track": ("programme_track", N_("Bunyan programme track")),
    "responsible_entity": ("responsible_entity", N_("Responsible entity")),
    "tags": ("tags", N_("Tags (separated by commas)")),
    "supporting_entities": ("responsible_entity", N_("Supporting entities")),
    **deadline_targets("deadline", "deadline"),
}
NEW_DIRECTIVE_MESSAGES = {  # engine refusals without a field, and the field they are about
    "the deadline %(moment)s has already passed": "deadline",
    "a deadline is a moment, a Hijri or Gregorian date, or a duration": "deadline",
    "unknown entity: %(codes)s": "responsible_entity",
    "supporting entities must be distinct and differ from the responsible entity": "supporting_entities",
}
EXTENSION_MESSAGES = {"the deadline %(moment)s has already passed": "new_deadline",
                      "a deadline is a moment, a Hijri or Gregorian date, or a duration": "new_deadline"}


def _first_checks(form: Any) -> str | datetime:
    """The inputs the page reads itself, refused all at once: the title, the responsible entity, the deadline."""
    problems = FieldProblems()
    if not str(form.get("title") or "").strip():
        problems.add("title", "required", N_("Type the directive's title."))
    if not str(form.get("responsible_entity") or "") and form.get("kind") != "circular":
        problems.add("responsible_entity", "required", N_("Choose the responsible entity."))
    deadline: str | datetime = ""
    with problems.checking("deadline"):
        deadline = deadline_from_form(form)
    problems.raise_if_any()
    return deadline


@router.post("/directives/new")
async def create(request: Request) -> Response:
    user = require_user(request)
    access.require(user, "directive.create")
    form = await form_of(request)
    supporting = [v for v in form.getlist("supporting") if isinstance(v, str)]
    values: dict[str, str | list[str]] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    values["supporting"] = supporting
    launch = form.get("action") == "launch"
    state = request.app.state.tansiq
    error: TansiqError | None = None
    directive_id = None
    try:
        deadline = _first_checks(form)
        tags = [t for t in (str(form.get("tags") or "")).replace("،", ",").split(",") if t.strip()]
        meeting = str(form.get("meeting_id") or "")
        season = str(form.get("season") or "")
        new = NewDirective(
            title=str(form.get("title") or "").strip(), title_en=str(form.get("title_en") or "").strip() or None,
            kind=str(form.get("kind") or ""), responsible_entity=str(form.get("responsible_entity") or ""),
            deadline=deadline, body=str(form.get("body") or "").strip() or None,
            source=str(form.get("source") or "").strip() or None, track=str(form.get("track") or "business"),
            programme_track=str(form.get("programme_track") or "none"),
            priority=str(form.get("priority") or "normal"), supporting_entities=supporting,
            tags=[t.strip() for t in tags], meeting_id=int(meeting) if meeting.isdigit() else None,
            season_year=int(season) if season.isdigit() else None,
            process_model_key=str(form.get("process_model_key") or "") or None,
        )
        with state.db.transaction() as session:
            directive = directives.create(session, new, user.username, launch_now=launch)
            directive_id = directive.id
    except TansiqError as exc:
        error = exc
    if error is not None:
        with state.db.reading() as session:
            context = _choices(session)
        errors = form_errors(request, on_fields(error, NEW_DIRECTIVE_MESSAGES), NEW_DIRECTIVE_TARGETS)
        return render(request, "directive_new.html", {**context, "values": values, "error": errors}, status=422)
    return redirect(f"/directives/{directive_id}?msg={'launched' if launch else 'created'}")


# --- one directive ----------------------------------------------------------------------------------

def _visible(session: Session, user: Any, directive_id: int) -> Directive:
    if not 0 < directive_id <= 2_147_483_647:
        raise NotFound(N_("no directive %(directive)s"), params={"directive": str(directive_id)})
    return access.visible_directive(session, user, directive_id)


def diagram_state(session: Session, directive: Directive) -> dict[str, list[str]]:
    """Elements to mark on the diagram: done (a step completed), current (open), overdue (open, late)."""
    if directive.instance_id is None:
        return {"done": [], "current": [], "overdue": []}
    items = list(session.scalars(select(WorkItem).where(WorkItem.instance_id == directive.instance_id)))
    current = sorted({i.element_id for i in items if i.status == OPEN and not i.overdue})
    overdue = sorted({i.element_id for i in items if i.overdue})
    done = sorted({i.element_id for i in items if i.status == "completed"} - set(current) - set(overdue))
    return {"done": done, "current": current, "overdue": overdue}


def _heat_of(request: Request, session: Session, directive: Directive) -> dict[str, Any]:
    """The heatmap of the directive's model version, in its season, for its responsible entity (asked for
    with `?diagram=heatmap`, by the roles that read every directive)."""
    user = require_user(request)
    may_see = access.allowed(user, "insight.bottlenecks") and directive.instance_id is not None
    if not may_see or directive.instance_id is None or request.query_params.get("diagram") != "heatmap":
        return {"may_see_heat": may_see, "heat": None}
    model = instances.get_instance(session, directive.instance_id).model
    heat = bottlenecks.for_model(session, model.key, model.version,
                                 HeatFilter(season_id=directive.season_id, entity=directive.responsible_entity.code))
    return {"may_see_heat": True, "heat": heat, "diagram_heat": insight.diagram_heat(request, heat)}


def _element_names(session: Session, directive: Directive) -> dict[str, StepName]:
    """Names of every element of the directive's model, for timeline events about escalations, gateways and
    the like (steps the instance visited carry their own names)."""
    if directive.instance_id is None:
        return {}
    return process_models.compiled_model(instances.get_instance(session, directive.instance_id).model).element_names()


@router.get("/directives/{directive_id}")
def detail(request: Request, directive_id: int) -> Response:
    return _detail_page(request, directive_id)


def _detail_page(request: Request, directive_id: int, ext_errors: FormErrors | None = None,
                 ext_values: dict[str, str] | None = None, status: int = 200) -> Response:
    """The directive's page; after a refused extension request, with its errors and what was typed."""
    user = require_user(request)
    state = request.app.state.tansiq
    with state.db.reading() as session:
        directive = _visible(session, user, directive_id)
        steps: list[WorkItem] = []
        subjects = [directives.subject(directive.id)]
        if directive.instance_id is not None:
            steps = list(session.scalars(select(WorkItem).where(WorkItem.instance_id == directive.instance_id)
                                         .order_by(WorkItem.id)))
            subjects.append(instances.subject(directive.instance_id))
        escalation_rows = list(session.scalars(select(Escalation).where(Escalation.directive_id == directive.id)
                                               .order_by(Escalation.id)))
        evidence = evidence_store.of_directive(session, directive.id)
        timeline = audit.timeline(session, *subjects)
        code = access.entity_code(session, user)
        actionable = {s.id for s in steps if s.status == OPEN and access.can_act_on_item(user, s, code)}
        season = session.get(Season, directive.season_id)
        meeting = session.get(Meeting, directive.meeting_id) if directive.meeting_id else None
        context = {
            "d": directive, "steps": steps, "escalations": escalation_rows, "evidence": evidence,
            "timeline": timeline, "actionable": actionable, "season": season, "meeting": meeting,
            "diagram": diagram_state(session, directive), "overdue": directives.overdue(directive),
            "may_launch": directive.status == directives.DRAFT and access.allowed(user, "directive.launch"),
            "may_cancel": directive.status in (directives.DRAFT, directives.ACTIVE)
            and access.allowed(user, "directive.cancel"),
            "may_extend": directive.status == directives.ACTIVE
            and access.can_request_extension(session, user, directive),
            "hijri_today": _today_hijri(), "hijri_months": i18n.HIJRI_MONTHS,
            "names": {e.code: e for e in entities.list_entities(session)},
            "step_names": {**_element_names(session, directive), **{s.element_id: s for s in steps}},
            **_heat_of(request, session, directive),
            "ext_errors": ext_errors, "ext_values": ext_values,
        }
    return render(request, "directive.html", context, status=status)


@router.get("/directives/{directive_id}/diagram.xml")
def diagram_xml(request: Request, directive_id: int) -> Response:
    """The BPMN XML of the version the directive runs (or would run), names in the page's language."""
    user = require_user(request)
    state = request.app.state.tansiq
    with state.db.reading() as session:
        directive = _visible(session, user, directive_id)
        if directive.instance_id is not None:
            model = instances.get_instance(session, directive.instance_id).model
        elif directive.process_model_key:
            model = process_models.get_model(session, directive.process_model_key)
        else:
            raise NotFound("this directive has no process model")
        xml = model.bpmn_xml
    return xml_response(xml, language_of(request, user))


def xml_response(xml: str | bytes, language: str) -> Response:
    return Response(localized_bpmn(xml, language), media_type="application/xml",
                    headers={"Cache-Control": "private, no-store"})


SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def localized_bpmn(xml: str | bytes, language: str) -> bytes:
    """The model with each element's `name` replaced by its `name_ar` / `name_en` property, if it has one."""
    data = xml.encode() if isinstance(xml, str) else xml
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return data
    wanted = f"name_{language}"
    for prop in root.iter(f"{{{SPIFF}}}property"):
        if prop.get("name") == wanted and prop.get("value"):
            element = prop.getparent()
            while element is not None and etree.QName(element).localname in ("properties", "extensionElements"):
                element = element.getparent()
            if element is not None and element.get("name") is not None:
                element.set("name", prop.get("value"))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@router.post("/directives/{directive_id}/launch")
async def launch(request: Request, directive_id: int) -> Response:
    user = require_user(request)
    await form_of(request)
    with request.app.state.tansiq.db.transaction() as session:
        _visible(session, user, directive_id)
        access.require(user, "directive.launch")
        directives.launch(session, directive_id, user.username)
    return redirect(f"/directives/{directive_id}?msg=launched")


@router.post("/directives/{directive_id}/cancel")
async def cancel(request: Request, directive_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    with request.app.state.tansiq.db.transaction() as session:
        _visible(session, user, directive_id)
        access.require(user, "directive.cancel")
        directives.cancel(session, directive_id, user.username, str(form.get("reason") or ""))
    return redirect(f"/directives/{directive_id}?msg=cancelled")


@router.post("/directives/{directive_id}/extension")
async def extension(request: Request, directive_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    back = str(form.get("back") or "")
    from_step = back.startswith("/steps/") and back[7:].isdigit()
    try:
        new_deadline = _extension_checks(form)
        with request.app.state.tansiq.db.transaction() as session:
            directive = _visible(session, user, directive_id)
            if not access.can_request_extension(session, user, directive):
                raise Forbidden("only the responsible entity asks for more time")
            directives.request_extension(session, directive_id, user.username, new_deadline,
                                         str(form.get("reason") or ""))
    except (InvalidInput, Conflict) as exc:
        exc = on_fields(exc, EXTENSION_MESSAGES)
        values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        if from_step:
            return refused_step(request, int(back[7:]), user, exc, values, "extension")
        return _detail_page(request, directive_id, ext_errors=form_errors(request, exc, EXTENSION_TARGETS),
                            ext_values=values, status=422 if isinstance(exc, InvalidInput) else 409)
    target = back if from_step else f"/directives/{directive_id}"
    return redirect(f"{target}?msg=extension")


def _extension_checks(form: Any) -> str | datetime:
    """The new deadline and the reason, both refused at once."""
    problems = FieldProblems()
    if not str(form.get("reason") or "").strip():
        problems.add("reason", "required", N_("an extension request needs a reason"))
    new_deadline: str | datetime = ""
    with problems.checking("new_deadline"):
        new_deadline = deadline_from_form(form, "new_deadline")
    problems.raise_if_any()
    return new_deadline

