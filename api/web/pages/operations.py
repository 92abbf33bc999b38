"""The operations view: instances (filtered), an instance with its diagram, variables, history and actions,
incidents (retried as they are or with corrected variables), and version migration from the model's page.

Administrators only; to an entity user these pages do not exist (404), as over the API.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.web.core import FormErrors, WebRoute, form_errors, language_of, redirect, render
from api.web.pages.directives import xml_response
from api.web.session import form_of, require_user
from engine.bpmn import process_models
from engine.calendar.durations import RIYADH
from engine.directives import access
from engine.directives.directives import Directive
from engine.foundation import clock
from engine.foundation.errors import N_, FieldProblems, InvalidInput, NotFound, TansiqError
from engine.people.roles import ENTITY_USER
from engine.storage import audit
from engine.work import incidents, instance_migration, instances, work_items
from engine.work.instances import STATUSES, InstanceFilter

router = APIRouter(prefix="/admin", route_class=WebRoute)
PAGE_SIZE = 50
VALUE_KINDS = ("text", "number", "boolean", "json")


def operator(request: Request) -> Any:
    user = require_user(request)
    if user.role == ENTITY_USER:
        raise NotFound(N_("not found"))
    access.require(user, "instance.operate")
    return user


def _filters(request: Request) -> tuple[InstanceFilter, dict[str, str]]:
    """The filter form's values, each checked; a bad one is refused with a clear message."""
    q = request.query_params
    shown: dict[str, str] = {}
    for name in ("model", "version", "status", "business_key", "directive", "started_from", "started_until"):
        value = (q.get(name) or "").strip()
        if value:
            shown[name] = value[:200]
    where = InstanceFilter(
        model=shown.get("model"), version=_positive(shown.get("version"), "version"),
        status=shown.get("status"), business_key=shown.get("business_key"),
        directive_id=_positive(shown.get("directive"), "directive"),
        started_from=_moment(shown.get("started_from")), started_until=_moment(shown.get("started_until")),
    )
    where.conditions()
    return where, shown


_NOT_POSITIVE = {"version": N_("the version is a whole number above zero"),
                 "directive": N_("the directive is a whole number above zero")}


def _positive(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) <= 2_147_483_647:
        raise InvalidInput(_NOT_POSITIVE[name])
    return int(value)


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(N_("not a date and time: %(value)s"), params={"value": repr(value)}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=RIYADH)  # the form's local time


def _linked_directives(session: Session, instance_ids: list[int]) -> dict[int, Directive]:
    if not instance_ids:
        return {}
    rows = session.scalars(select(Directive).where(Directive.instance_id.in_(instance_ids)))
    return {d.instance_id: d for d in rows if d.instance_id is not None}


@router.get("/instances")
def instances_page(request: Request, page: int = 1) -> Response:
    operator(request)
    where, shown = _filters(request)
    page = max(1, min(page, 100_000))
    with request.app.state.tansiq.db.reading() as session:
        rows = instances.list_instances(session, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        total = instances.count_instances(session, where)
        linked = _linked_directives(session, [r.id for r in rows])
        models = process_models.list_models(session)
    query = "&".join(f"{k}={v}" for k, v in shown.items())
    return render(request, "admin_instances.html", {
        "rows": rows, "total": total, "linked": linked, "models": models, "statuses": STATUSES, "filters": shown,
        "page": page, "pages": max(1, -(-total // PAGE_SIZE)), "base": "/admin/instances?" + query,
        "section": "instances"})


@router.get("/incidents")
def incidents_page(request: Request, page: int = 1) -> Response:
    operator(request)
    page = max(1, min(page, 100_000))
    with request.app.state.tansiq.db.reading() as session:
        rows = incidents.list_incidents(session, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        total = incidents.count_incidents(session)
        linked = _linked_directives(session, [r.id for r in rows])
    now = clock.now()
    ages = {r.id: (now - r.incident_at).total_seconds() / 3600 for r in rows if r.incident_at}
    return render(request, "admin_incidents.html", {
        "rows": rows, "total": total, "linked": linked, "ages": ages, "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)), "base": "/admin/incidents?x=1", "section": "incidents"})


def _instance_page(request: Request, instance_id: int, *, error: FormErrors | None = None,
                   details: list[dict] | None = None, values: dict[str, str] | None = None,
                   status: int = 200) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        instance = instances.get_instance(session, instance_id) if 0 < instance_id <= 2_147_483_647 else None
        if instance is None:
            raise NotFound(N_("no process instance %(instance)s"), params={"instance": str(instance_id)})
        runtime = instances.load_runtime(instance)
        states = runtime.element_states()
        failed = [instance.incident_element] if instance.status == instances.INCIDENT and instance.incident_element \
            else []
        steps = list(session.scalars(select(work_items.WorkItem).where(
            work_items.WorkItem.instance_id == instance_id).order_by(work_items.WorkItem.id)))
        context = {
            "i": instance, "directive": _linked_directives(session, [instance_id]).get(instance_id),
            "diagram": {"done": states.done, "current": [e for e in states.current if e not in failed],
                        "failed": failed},
            "tokens": runtime.waiting_tasks(), "variables": _editable(runtime.variables()),
            "steps": steps, "timeline": audit.timeline(session, instances.subject(instance_id)),
            "error": error, "error_details": details or [], "values": values or {}, "kinds": VALUE_KINDS,
            "section": "instances",
        }
    return render(request, "admin_instance.html", context, status=status)


def _editable(variables: dict[str, Any]) -> list[dict[str, str]]:
    """Each variable as the form shows it: its name, its kind and its value as text."""
    rows = []
    for name, value in sorted(variables.items()):
        if isinstance(value, bool):
            kind, text = "boolean", "true" if value else "false"
        elif isinstance(value, int | float):
            kind, text = "number", json.dumps(value)
        elif isinstance(value, str):
            kind, text = "text", value
        else:
            kind, text = "json", json.dumps(value, ensure_ascii=False, indent=1)
        rows.append({"name": name, "kind": kind, "text": text})
    return rows


def corrected_variables(form: Any) -> dict[str, Any]:
    """The variables the correction form sends back: each kept one read as its kind, removed ones left out,
    and at most one new variable."""
    corrected: dict[str, Any] = {}
    problems = FieldProblems()
    for key in form:
        if not key.startswith("var:"):
            continue
        name = key[4:]
        if form.get(f"remove:{name}"):
            continue
        with problems.checking(name):
            corrected[name] = _read_value(str(form.get(key) or ""), str(form.get(f"kind:{name}") or "text"))
    new_name = str(form.get("new_name") or "").strip()
    if new_name:
        with problems.checking(new_name):
            corrected[new_name] = _read_value(str(form.get("new_value") or ""), "json")
    problems.raise_if_any(N_("some values could not be read"))
    return corrected


def _read_value(text: str, kind: str) -> Any:
    if kind == "text":
        return text
    if kind == "boolean":
        if text not in ("true", "false"):
            raise InvalidInput(N_("choose true or false"))
        return text == "true"
    if kind == "number":
        return _number(text.strip().translate(_WESTERN_DIGITS))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(N_("not JSON: %(reason)s"), params={"reason": exc.msg}) from None


_WESTERN_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩٫", "0123456789.")  # a number typed with Arabic-Indic digits


def _number(text: str) -> int | float:
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if value == value and value not in (float("inf"), float("-inf")):  # no NaN, no infinity
            return value
    raise InvalidInput(N_("a number is expected"))


@router.get("/instances/{instance_id}")
def instance_page(request: Request, instance_id: int) -> Response:
    operator(request)
    return _instance_page(request, instance_id)


@router.get("/instances/{instance_id}/diagram.xml")
def instance_xml(request: Request, instance_id: int) -> Response:
    user = operator(request)
    with request.app.state.tansiq.db.reading() as session:
        xml = instances.get_instance(session, instance_id).model.bpmn_xml
    return xml_response(xml, language_of(request, user))


@router.post("/instances/{instance_id}/retry")
async def retry(request: Request, instance_id: int) -> Response:
    user = operator(request)
    form = await form_of(request)
    try:
        with request.app.state.tansiq.db.transaction() as session:
            if form.get("mode") == "corrected":
                instance = incidents.retry_with_variables(session, instance_id, corrected_variables(form),
                                                          user.username)
            else:
                instance = instances.retry(session, instance_id, user.username)
            status = instance.status
    except (InvalidInput, incidents.StillFailing) as exc:
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        return _instance_page(request, instance_id, error=form_errors(request, exc), details=exc.details, values=values,
                              status=409 if isinstance(exc, incidents.StillFailing) else 422)
    outcome = "retried" if status != instances.INCIDENT else "retry_failed"
    return redirect(f"/admin/instances/{instance_id}?msg={outcome}")


@router.post("/instances/{instance_id}/cancel")
async def cancel(request: Request, instance_id: int) -> Response:
    user = operator(request)
    await form_of(request)
    with request.app.state.tansiq.db.transaction() as session:
        instances.cancel(session, instance_id, user.username)
    return redirect(f"/admin/instances/{instance_id}?msg=instance_cancelled")


@router.post("/models/{key}/{version}/migrate")
async def migrate(request: Request, key: str, version: int) -> Response:
    """The dry run (the default) or the migration of every running instance of a version to a newer one."""
    from api.web.pages.admin import model_page_response

    user = operator(request)
    form = await form_of(request)
    to_version = str(form.get("to_version") or "")
    if not to_version.isdigit():
        refused = InvalidInput(N_("choose the version to move to"))
        return model_page_response(request, key, version, error=form_errors(request, refused), status=422)
    target = int(to_version)
    db = request.app.state.tansiq.db
    try:
        applying = form.get("apply") == "yes"
        with db.reading() as session:
            changes = instance_migration.version_diff(session, key[:200], version, target)
            if not applying:
                plans = instance_migration.plan_many(session, key[:200], version, target)
        outcomes = None
        if applying:
            with db.transaction() as session:
                moved = instance_migration.migrate_many(session, key[:200], version, target, user.username)
            outcomes = {o.instance_id: o for o in moved}
            plans = [o.plan for o in moved]
    except TansiqError as exc:
        return model_page_response(request, key, version, error=form_errors(request, exc), status=422)
    return model_page_response(request, key, version, migration={
        "to_version": target, "plans": plans, "changes": changes, "outcomes": outcomes})
