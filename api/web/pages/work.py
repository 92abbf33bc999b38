"""The entity inbox (due and overdue first, with counts) and the step page: its form generated from the
step's JSON Schema, progress updates, evidence upload, and a request for more time."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from api.problems import attachment
from api.web import i18n
from api.web.core import FieldTargets, WebRoute, form_errors, is_htmx, redirect, render
from api.web.forms import deadline_targets, evidence_as_integers, fields_of, read_form
from api.web.labels import label
from api.web.session import form_of, require_user
from engine.directives import access, evidence_store
from engine.directives import inbox as inbox_list
from engine.directives.steps import MAX_NOTE, NOTE_TOO_LONG, PROGRESS_RANGE, claim, record_progress, workable
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, FieldIssue, FieldProblems, InvalidInput, NotFound, TansiqError
from engine.foundation.schema_issues import FORM, schema_issues
from engine.people import entities, users
from engine.people.roles import ADMIN
from engine.storage.db import MAX_ID
from engine.work import instances, work_items
from engine.work.work_items import OPEN, WorkItem

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50
DONE_COUNT_CAP = 10_000


SHOWS = ("open", "overdue", "done")
INBOX_FILTERS = ("show", "q", "sort", "order")


def _inbox_filters(request: Request) -> dict[str, str]:
    """The inbox's filters from the query string, only known values kept (for links, tabs and the pager)."""
    raw = {name: (request.query_params.get(name) or "").strip()[:100] for name in INBOX_FILTERS}
    allowed = {"show": SHOWS, "sort": inbox_list.INBOX_SORTS, "order": ("asc", "desc")}
    return {k: v for k, v in raw.items() if v and (k not in allowed or v in allowed[k])}


def _inbox_chosen(filters: dict[str, str]) -> inbox_list.InboxFilters:
    show = filters.get("show", "open")
    return inbox_list.InboxFilters(status=work_items.COMPLETED if show == "done" else OPEN,
                                   overdue=True if show == "overdue" else None, text=filters.get("q"),
                                   sort=filters.get("sort"), descending=filters.get("order") == "desc")


@router.get("/inbox")
def inbox(request: Request, page: int = 1) -> Response:
    user = require_user(request)
    access.require(user, "task.work")
    now = clock.now()
    filters = _inbox_filters(request)
    page = max(1, min(page, 10_000))
    with request.app.state.tansiq.db.reading() as session:
        code = access.entity_code(session, user)
        counts = _counts(session, access.inbox(select(WorkItem.id), user, code), now)
        rows, counted = inbox_list.search(session, user, _inbox_chosen(filters), PAGE_SIZE, (page - 1) * PAGE_SIZE,
                                          now)
        total = _count(session, counted.limit(DONE_COUNT_CAP)) if filters.get("show") == "done" else _count(
            session, counted)
        pending = inbox_list.extension_pending(session, [item.instance_id for item, _ in rows])
    query_without_page = urlencode(filters)
    context = {"rows": rows, "counts": counts, "show": filters.get("show", "open"), "filters": filters,
               "page": page, "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), "now": now, "total": total,
               "pending": pending, "query_without_page": query_without_page,
               "tab_query": urlencode({k: v for k, v in filters.items() if k != "show"})}
    return render(request, "partials/inbox_results.html" if is_htmx(request) else "inbox.html", context)


def _counts(session: Session, counted: Any, now: datetime) -> dict[str, Any]:
    """The inbox's figures, counted on work_item alone so the inbox index answers them. Done steps only grow
    through a season (hundreds of thousands for a busy entity): counted up to DONE_COUNT_CAP, shown as "N+"."""
    open_steps = counted.where(WorkItem.status == OPEN)
    dated = open_steps.where(WorkItem.due_at.is_not(None))
    done = _count(session, counted.where(WorkItem.status == work_items.COMPLETED).limit(DONE_COUNT_CAP))
    return {"open": _count(session, open_steps),
            "overdue": _count(session, dated.where(WorkItem.due_at < now)),
            "due_today": _count(session, dated.where(WorkItem.due_at >= now, WorkItem.due_at < _end_of_local_day(now))),
            "done": done, "done_capped": done >= DONE_COUNT_CAP}


def _count(session: Session, query: Any) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _end_of_local_day(now: datetime) -> datetime:
    local = i18n.local(now)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=local.tzinfo)


# --- one step -----------------------------------------------------------------------------------------

def _visible_item(session: Session, user: Any, item_id: int) -> WorkItem:
    item = session.get(WorkItem, item_id) if 0 < item_id <= MAX_ID else None
    if item is None or not access.can_see_item(session, user, item):
        raise NotFound(N_("no step %(step)s"), params={"step": str(item_id)})
    return item


def _actionable_item(session: Session, user: Any, item_id: int) -> WorkItem:
    """The step, locked, if the user may work it (404 unseen, 403 not theirs, 409 no longer open)."""
    item = workable(session, user, item_id)
    if item.status != OPEN:
        raise instances.no_longer_open(session, item)
    if user.role != ADMIN and item.claimed_by not in (None, user.username):
        raise Conflict(N_("this step is taken by %(actor)s"),
                       params={"actor": users.display_name(session, item.claimed_by or "")})
    return item


def _step_context(session: Session, user: Any, item: WorkItem, values: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    directive = access.directive_of_item(session, item)
    code = access.entity_code(session, user)
    can_act = item.status == OPEN and access.can_act_on_item(user, item, code)
    evidence = evidence_store.of_work_item(session, item.id)
    directive_evidence = evidence_store.of_directive(session, directive.id) if directive else evidence
    pending = bool(inbox_list.extension_pending(session, [item.instance_id])) and item.element_id != \
        inbox_list.EXTENSION_REVIEW
    history = []
    if directive is not None and directive.instance_id is not None:
        history = list(session.scalars(select(WorkItem).where(WorkItem.instance_id == item.instance_id,
                                                              WorkItem.id != item.id,
                                                              WorkItem.status == work_items.COMPLETED)
                                       .order_by(WorkItem.id)))
    return {
        "item": item, "d": directive, "can_act": can_act, "evidence": evidence,
        "directive_evidence": directive_evidence, "fields": fields_of(item.form_schema, values),
        "has_evidence_field": item.form_schema is None or "evidence" in ((item.form_schema or {}).get("properties")
                                                                        or {}),
        "may_extend": can_act and not pending and directive is not None and directive.status == "active"
        and access.can_request_extension(session, user, directive),
        "extension_pending": pending,
        "requested_deadline": inbox_list.requested_deadline(session, directive.id) if pending and directive else None,
        "history": history, "hijri_today": _hijri_today(), "hijri_months": i18n.HIJRI_MONTHS,
        "is_entity_step": item.assignee_entity is not None,
        "assignee": entities.get_by_code(session, item.assignee_entity) if item.assignee_entity else None,
    }


def _hijri_today():
    from engine.calendar.business_calendar import gregorian_to_hijri

    return gregorian_to_hijri(i18n.local(clock.now()).date())


@router.get("/steps/{item_id}")
def step(request: Request, item_id: int) -> Response:
    user = require_user(request)
    with request.app.state.tansiq.db.reading() as session:
        item = _visible_item(session, user, item_id)
        context = _step_context(session, user, item)
    return render(request, "step.html", context)


def _files(form: Any) -> list[UploadFile]:
    return [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]


def _check(request: Request, files: list[UploadFile]) -> list[evidence_store.CheckedFile]:
    limits = request.app.state.tansiq.settings.evidence_limits
    return evidence_store.check_many(((f.filename, f.file) for f in files), limits)


def _store(request: Request, session: Session, user: Any, item: WorkItem,
           checked: list[evidence_store.CheckedFile]) -> list[int]:
    directive = access.directive_of_item(session, item)
    rows = evidence_store.store_and_record(
        session, request.app.state.tansiq.settings.home, checked, user.username,
        directive_id=directive.id if directive else None, work_item_id=item.id, instance_id=item.instance_id,
        backend=request.app.state.tansiq.settings.files_backend)
    return [row.id for row in rows]


FILES_LABEL = N_("Add files (PDF, images, Word, Excel or text; up to 10 MB each)")
PROGRESS_TARGETS = {"percent": ("percent", N_("How far is the work (%%)")), "note": ("progress-note", N_("Note")),
                    "files": ("progress-files", N_("Evidence files (optional)"))}
EVIDENCE_TARGETS = {"files": ("evidence-files", N_("Files"))}
EXTENSION_TARGETS = {**deadline_targets("new_deadline", "ext"), "reason": ("ext-reason", N_("Reason"))}


def _complete_targets(schema: dict[str, Any] | None) -> dict[str, tuple[str, str | None]]:
    """The step form's inputs by field name: their ids and labels (the schema's title, else the known word)."""
    targets: dict[str, tuple[str, str | None]] = {"files": ("complete-files", FILES_LABEL)}
    for f in fields_of(schema):
        input_id = {"yesno": f"f-{f.name}-yes", "evidence": "complete-files"}.get(f.widget, f"f-{f.name}")
        targets[f.name] = (input_id, f.title or label("field", f.name))
    return targets


def _targets(which: str, schema: dict[str, Any] | None) -> FieldTargets:
    by_form: dict[str, FieldTargets] = {"complete": _complete_targets(schema), "progress": PROGRESS_TARGETS,
                                        "evidence": EVIDENCE_TARGETS, "extension": EXTENSION_TARGETS}
    return by_form.get(which, {})


def refused_step(request: Request, item_id: int, user: Any, exc: TansiqError, values: dict[str, Any] | None,
                 which: str) -> Response:
    """The step page again, with every error next to its field of the form that was sent, and what was typed."""
    if exc.code in ("not-found", "forbidden"):
        raise exc
    with request.app.state.tansiq.db.reading() as session:
        item = _visible_item(session, user, item_id)
        context = _step_context(session, user, item, values if which == "complete" else None)
        errors = form_errors(request, exc, _targets(which, item.form_schema))
    status = {"conflict": 409, "evidence-too-large": 413, "unsupported-evidence-type": 415}.get(exc.code, 422)
    context.update({"error": errors, "error_form": which, "sent": values or {}})
    return render(request, "step.html", context, status=status)


_refused = refused_step


def _on_files(exc: InvalidInput) -> InvalidInput:
    """A refused upload, its problem shown next to the file input."""
    if exc.fields:
        return exc
    return type(exc)(exc.message_id, params=exc.params, fields=exc.field_issues("files"))


def _checked_files(request: Request, form: Any, problems: FieldProblems, name: str
                   ) -> list[evidence_store.CheckedFile]:
    with problems.checking(name):
        return _check(request, _files(form))
    return []


def _read_completion(request: Request, schema: dict[str, Any] | None, form: Any
                     ) -> tuple[dict[str, Any], list[evidence_store.CheckedFile]]:
    """The step form's data and its new files, checked before anything is stored: every field's problem at
    once (unreadable inputs, bad files, the schema's rules) or nothing."""
    problems = FieldProblems()
    data = read_form(schema, form, problems)
    with problems.checking(FORM):
        work_items.check_variables(data)
    checked = _checked_files(request, form, problems, "files")
    if schema:
        preview = dict(data)
        as_integers = evidence_as_integers(schema)
        if "evidence" in preview and as_integers:
            preview["evidence"] = [int(v) for v in preview["evidence"] if str(v).isdigit()]
        if checked and "evidence" in (schema.get("properties") or {}):  # the new files will be evidence
            preview["evidence"] = [*preview.get("evidence", []), *([0 if as_integers else "0"] * len(checked))]
        for issue in schema_issues(schema, preview):
            if not problems.has(issue.field.split("/")[0]):
                problems.issues.append(issue)
    problems.raise_if_any(N_("the form data does not match the step's form") if problems.issues else None)
    return data, checked


def _typed(schema: dict[str, Any] | None, form: Any) -> dict[str, Any]:
    """What the user typed in the step form, as text, to show it again after a refusal."""
    typed: dict[str, Any] = {}
    for f in fields_of(schema):
        raw = form.get(f"field.{f.name}")
        if isinstance(raw, str):
            typed[f.name] = {"yes": True, "no": False}.get(raw) if f.widget == "yesno" else raw
    return typed


def schema_of(request: Request, user: Any, item_id: int) -> dict[str, Any] | None:
    with request.app.state.tansiq.db.reading() as session:
        return _visible_item(session, user, item_id).form_schema


@router.post("/steps/{item_id}/claim")
async def claim_step(request: Request, item_id: int) -> Response:
    user = require_user(request)
    await form_of(request)
    try:
        with request.app.state.tansiq.db.transaction() as session:
            _actionable_item(session, user, item_id)
            claim(session, item_id, user.username)
    except TansiqError as exc:
        return _refused(request, item_id, user, exc, None, "claim")
    return redirect(f"/steps/{item_id}?msg=claimed")


@router.post("/steps/{item_id}/complete")
async def complete(request: Request, item_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    values: dict[str, Any] = {}
    try:
        with request.app.state.tansiq.db.reading() as session:
            schema = _visible_item(session, user, item_id).form_schema
        data, checked = _read_completion(request, schema, form)
        values = dict(data)
        with request.app.state.tansiq.db.transaction() as session:
            item = _actionable_item(session, user, item_id)
            new_ids = _store(request, session, user, item, checked) if checked else []
            if new_ids and (item.form_schema is None or "evidence" in (item.form_schema.get("properties") or {})):
                added = new_ids if evidence_as_integers(item.form_schema) else [str(i) for i in new_ids]
                data["evidence"] = [*data.get("evidence", []), *added]
            if "evidence" in data:
                if evidence_as_integers(item.form_schema):
                    data["evidence"] = [int(v) for v in data["evidence"] if str(v).isdigit()]
                named = [int(v) for v in data["evidence"] if str(v).isdigit()]
                evidence_store.require_in_instance(session, named, item.instance_id)
            work_items.validate_form(item, data)
            instances.complete_task(session, item.id, data, user.username)  # updates `item` in this session
            finished = item.status == work_items.COMPLETED
            directive = access.directive_of_item(session, item)
            code = access.entity_code(session, user)
            mine = [step.id for step in instances.open_steps(session, item.instance_id)
                    if access.can_act_on_item(user, step, code)]
    except TansiqError as exc:
        return _refused(request, item_id, user, exc, values or _typed(schema_of(request, user, item_id), form),
                        "complete")
    if not finished:  # the process stopped in an incident: the step stays open, the page says so
        return redirect(f"/steps/{item_id}")
    if len(mine) == 1:  # the user's next step of this directive, straight away (no trip through the inbox)
        return redirect(f"/steps/{mine[0]}?msg=completed")
    if user.role == "entity_user" or directive is None:
        return redirect("/inbox?msg=completed")
    return redirect(f"/directives/{directive.id}?msg=completed")


@router.post("/steps/{item_id}/progress")
async def progress(request: Request, item_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    text = str(form.get("percent") or "").strip()
    note = str(form.get("note") or "").strip() or None
    try:
        problems = FieldProblems()
        if not text.isdigit() or int(text) > 100:
            problems.add("percent", "maximum" if text.isdigit() else "type", PROGRESS_RANGE)
        if note is not None and len(note) > MAX_NOTE:
            problems.add("note", "max-length", NOTE_TOO_LONG, limit=MAX_NOTE)
        checked = _checked_files(request, form, problems, "files")
        problems.raise_if_any()
        with request.app.state.tansiq.db.transaction() as session:
            item = _actionable_item(session, user, item_id)
            ids = _store(request, session, user, item, checked) if checked else []
            record_progress(session, item_id, user.username, int(text), note, evidence_ids=ids)
    except TansiqError as exc:
        return _refused(request, item_id, user, exc, {"percent": text, "note": note or ""}, "progress")
    return redirect(f"/steps/{item_id}?msg=progress")


@router.post("/steps/{item_id}/evidence")
async def upload(request: Request, item_id: int) -> Response:
    user = require_user(request)
    form = await form_of(request)
    try:
        checked = _check(request, _files(form))
        if not checked:
            raise InvalidInput(N_("choose at least one file"), fields=[
                FieldIssue("files", "required", N_("choose at least one file"))])
        with request.app.state.tansiq.db.transaction() as session:
            item = _actionable_item(session, user, item_id)
            _store(request, session, user, item, checked)
    except InvalidInput as exc:
        return _refused(request, item_id, user, _on_files(exc), None, "evidence")
    except TansiqError as exc:
        return _refused(request, item_id, user, exc, None, "evidence")
    return redirect(f"/steps/{item_id}?msg=uploaded")


@router.get("/evidence/{evidence_id}")
def download(request: Request, evidence_id: int) -> Response:
    """An evidence file, only for those who may see its directive; always as an attachment."""
    user = require_user(request)
    state = request.app.state.tansiq
    with state.db.reading() as session:
        found = evidence_store.for_download(session, state.settings.home, user, evidence_id)
    return attachment(state.db, found.file, found.content_type, found.filename)
