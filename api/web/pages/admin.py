"""Administration: entities, users, seasons, process models (upload, versions, diagram)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from api.web.core import FormErrors, WebRoute, form_errors, redirect, render
from api.web.labels import LABELS
from api.web.pages.directives import xml_response
from api.web.session import form_of, require_user
from engine.bpmn import decision_tables, process_models
from engine.calendar import seasons
from engine.calendar.business_calendar import MODES
from engine.calendar.seasons import Season
from engine.directives import access
from engine.directives.evidence_store import safe_filename
from engine.foundation.errors import N_, FieldIssue, FieldProblems, InvalidInput, NotFound, TansiqError
from engine.people import entities, users
from engine.people.roles import ROLES
from engine.people.users import list_users, update_user
from engine.storage import audit
from engine.work import instance_migration

router = APIRouter(prefix="/admin", route_class=WebRoute)


def _admin(request: Request, action: str) -> Any:
    user = require_user(request)
    access.require(user, action)
    return user


@router.get("")
def admin_home(request: Request) -> Response:
    _admin(request, "entity.manage")
    return redirect("/admin/entities")


# --- entities ---------------------------------------------------------------------------------------

def _entities_page(request: Request, *, error: FormErrors | None = None, values: dict[str, Any] | None = None,
                   status: int = 200) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        rows = entities.list_entities(session)
    return render(request, "admin_entities.html", {"rows": rows, "kinds": tuple(LABELS["entity_kind"]),
                                                   "error": error, "values": values or {}, "section": "entities"},
                  status=status)


@router.get("/entities")
def entities_page(request: Request) -> Response:
    _admin(request, "entity.manage")
    return _entities_page(request)


ENTITY_TARGETS = {"code": ("e-code", N_("Code")), "name_ar": ("e-ar", N_("Name (Arabic)")),
                  "name_en": ("e-en", N_("Name (English)")), "kind": ("e-kind", N_("Kind"))}
USER_TARGETS = {"username": ("u-name", N_("Username")), "role": ("u-role", N_("Role")),
                "entity": ("u-entity", N_("Entity (for entity users)")), "language": ("u-lang", N_("Language")),
                "password": ("u-pass", N_("Password (at least 10 characters)"))}


@router.post("/entities")
async def create_entity(request: Request) -> Response:
    user = _admin(request, "entity.manage")
    form = await form_of(request)
    values = {k: str(form.get(k) or "").strip() for k in ("code", "name_ar", "name_en", "kind", "email")}
    try:
        with request.app.state.tansiq.db.transaction() as session:
            entity = entities.create_entity(session, values["code"], values["name_ar"], values["name_en"],
                                            values["kind"] or "service", values["email"] or None)
            audit.record(session, user.username, "entity.created", f"entity:{entity.code}",
                         {"name_ar": entity.name_ar, "name_en": entity.name_en, "kind": entity.kind})
    except TansiqError as exc:
        return _entities_page(request, error=form_errors(request, exc, ENTITY_TARGETS), values=values, status=422)
    return redirect("/admin/entities?msg=saved")


# --- users ------------------------------------------------------------------------------------------

def _users_page(request: Request, *, error: FormErrors | None = None, values: dict[str, Any] | None = None,
                status: int = 200) -> Response:
    typed = request.query_params.get("q") or ""
    wanted = typed.strip()[:200] if "\x00" not in typed else ""
    with request.app.state.tansiq.db.reading() as session:
        rows, total = list_users(session, text=wanted, limit=500)
        entity_list = entities.list_entities(session)
    return render(request, "admin_users.html", {"rows": rows, "total": total, "roles": ROLES, "q": wanted,
                                                "entities": entity_list, "error": error, "values": values or {},
                                                "section": "users"}, status=status)


@router.get("/users")
def users_page(request: Request) -> Response:
    _admin(request, "user.manage")
    return _users_page(request)


@router.post("/users")
async def create_user(request: Request) -> Response:
    user = _admin(request, "user.manage")
    form = await form_of(request)
    values = {k: str(form.get(k) or "").strip() for k in ("username", "full_name", "email", "role", "entity",
                                                          "language")}
    password = str(form.get("password") or "")
    try:
        with request.app.state.tansiq.db.transaction() as session:
            created = users.create_user(session, values["username"], password, values["role"],
                                        full_name=values["full_name"], email=values["email"] or None,
                                        entity_code=values["entity"] or None, language=values["language"] or "ar")
            audit.record(session, user.username, "user.created", f"user:{created.username}",
                         {"role": created.role, "entity": values["entity"] or None})
    except TansiqError as exc:
        return _users_page(request, error=form_errors(request, exc, USER_TARGETS), values=values, status=422)
    return redirect("/admin/users?msg=saved")


@router.post("/users/{username}")
async def change_user(request: Request, username: str) -> Response:
    user = _admin(request, "user.manage")
    form = await form_of(request)
    changes: dict[str, Any] = {}
    if form.get("active") in ("yes", "no"):
        changes["active"] = form.get("active") == "yes"
    if form.get("password"):
        changes["password"] = str(form.get("password"))
    if form.get("language") in ("ar", "en"):
        changes["language"] = str(form.get("language"))
    if not changes:
        raise InvalidInput("nothing to change")
    with request.app.state.tansiq.db.transaction() as session:
        update_user(session, username[:60], user.username, **changes)
    return redirect("/admin/users?msg=saved")


# --- seasons ----------------------------------------------------------------------------------------

def _seasons_page(request: Request, *, error: FormErrors | None = None, values: dict[str, Any] | None = None,
                  status: int = 200) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        rows = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
    return render(request, "admin_seasons.html", {"rows": rows, "modes": MODES, "error": error,
                                                  "values": values or {}, "section": "seasons"}, status=status)


@router.get("/seasons")
def seasons_page(request: Request) -> Response:
    _admin(request, "season.manage")
    return _seasons_page(request)


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(N_("This is not a date: %(text)s"), params={"text": text},
                           fields=[FieldIssue(field, "format", N_("Type a date."))]) from None


def _holidays(text: str) -> list[str]:
    days = [d.strip() for d in text.replace("،", ",").replace("\n", ",").split(",") if d.strip()]
    return sorted({_date(d, "holidays").isoformat() for d in days})


SEASON_TARGETS = {"hijri_year": ("n-year", N_("Hijri year")), "starts_on": ("n-start", N_("Starts (Gregorian)")),
                  "ends_on": ("n-end", N_("Ends (Gregorian)")), "calendar_mode": ("n-mode", N_("Calendar")),
                  "holidays": ("n-hol", N_("Holidays (Gregorian dates, separated by commas)"))}


def _new_season_dates(values: dict[str, str]) -> tuple[int, date, date, list[str]]:
    """The new season's year, first and last days and holidays, every bad one refused at once."""
    problems = FieldProblems()
    if not values["hijri_year"].isdigit():
        problems.add("hijri_year", "type", N_("a season's Hijri year is a number, e.g. 1447"))
    starts = ends = date.min
    holidays: list[str] = []
    with problems.checking("starts_on"):
        starts = _date(values["starts_on"], "starts_on")
    with problems.checking("ends_on"):
        ends = _date(values["ends_on"], "ends_on")
    with problems.checking("holidays"):
        holidays = _holidays(values["holidays"])
    problems.raise_if_any()
    return int(values["hijri_year"]), starts, ends, holidays


@router.post("/seasons")
async def create_season(request: Request) -> Response:
    user = _admin(request, "season.manage")
    form = await form_of(request)
    values = {k: str(form.get(k) or "").strip() for k in ("hijri_year", "starts_on", "ends_on", "calendar_mode",
                                                          "holidays")}
    try:
        year, starts, ends, holidays = _new_season_dates(values)
        with request.app.state.tansiq.db.transaction() as session:
            season = seasons.create_season(session, year, starts, ends, holidays=holidays,
                                           calendar_mode=values["calendar_mode"] or "season")
            audit.record(session, user.username, "season.created", f"season:{season.hijri_year}",
                         {"starts_on": season.starts_on, "ends_on": season.ends_on, "mode": season.calendar_mode})
    except TansiqError as exc:
        return _seasons_page(request, error=form_errors(request, exc, SEASON_TARGETS), values=values, status=422)
    return redirect("/admin/seasons?msg=saved")


@router.post("/seasons/{year}")
async def change_season(request: Request, year: int) -> Response:
    user = _admin(request, "season.manage")
    form = await form_of(request)
    changes: dict[str, Any] = {}
    try:
        for name in ("starts_on", "ends_on"):
            if form.get(name):
                changes[name] = _date(str(form.get(name)), name)
        if form.get("calendar_mode") in MODES:
            changes["calendar_mode"] = str(form.get("calendar_mode"))
        if "holidays" in form:
            changes["holidays"] = _holidays(str(form.get("holidays") or ""))
        with request.app.state.tansiq.db.transaction() as session:
            season = seasons.update_season(session, seasons.get_season(session, year), **changes)
            audit.record(session, user.username, "season.updated", f"season:{season.hijri_year}", changes)
    except TansiqError as exc:
        if exc.code == "not-found":
            raise
        return _seasons_page(request, error=_season_change_errors(request, exc, year), status=422)
    return redirect("/admin/seasons?msg=saved")


def _season_change_errors(request: Request, exc: TansiqError, year: int) -> FormErrors:
    """A refused change of one season: its summary links to that season's inputs, not to the new-season form."""
    targets = {"starts_on": (f"s{year}-start", N_("Starts (Gregorian)")), "ends_on": (f"s{year}-end",
                                                                                    N_("Ends (Gregorian)")),
               "calendar_mode": (f"s{year}-mode", N_("Calendar")),
               "holidays": (f"s{year}-hol", N_("Holidays (Gregorian dates, separated by commas)"))}
    errors = form_errors(request, exc, targets)
    errors.items = [replace(item, field=f"season-{year}/{item.field}") for item in errors.items]
    return errors


# --- process models -----------------------------------------------------------------------------------

def _models_page(request: Request, *, error: FormErrors | None = None, details: list[dict] | None = None,
                 status: int = 200) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        rows = process_models.list_models(session)
        decisions = decision_tables.list_decisions(session)
    return render(request, "admin_models.html", {"rows": rows, "decisions": decisions, "error": error,
                                                 "error_details": details or [], "section": "models"}, status=status)


@router.get("/models")
def models_page(request: Request) -> Response:
    _admin(request, "model.deploy")
    return _models_page(request)


@router.post("/models")
async def deploy(request: Request) -> Response:
    user = _admin(request, "model.deploy")
    form = await form_of(request)
    upload = form.get("file")
    limit = request.app.state.tansiq.settings.model_max_bytes
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput(N_("choose a BPMN or DMN file"))
        content = await upload.read(limit + 1)
        if len(content) > limit:
            raise InvalidInput(N_("a process model may be at most %(limit)s bytes"), params={"limit": limit})
        name = safe_filename(upload.filename)
        with request.app.state.tansiq.db.transaction() as session:  # deploy() records it in the audit trail
            if name.lower().endswith(".dmn"):
                decision = decision_tables.deploy(session, content, name, user.username)
                page, created = f"/admin/decisions/{decision.decision.key}", decision.created
                outcome = "decision_deployed" if created else "unchanged"
            else:
                deployment = process_models.deploy(session, content, name, user.username)
                page, created = f"/admin/models/{deployment.model.key}", deployment.created
                outcome = "deployed" if created else "unchanged"
    except TansiqError as exc:
        return _models_page(request, error=form_errors(request, exc), details=exc.details, status=422)
    return redirect(f"{page}?msg={outcome}")


@router.get("/decisions/{key}")
def decision_page(request: Request, key: str, version: int | None = None) -> Response:
    _admin(request, "model.read")
    with request.app.state.tansiq.db.reading() as session:
        versions = decision_tables.list_versions(session, key[:200])
        shown = next((d for d in versions if d.version == version), None) if version else (
            versions[-1] if versions else None)
        if shown is None and version:
            raise NotFound(N_("no decision table %(key)s version %(version)s"),
                           params={"key": repr(key), "version": str(version)})
        if shown is None:
            raise NotFound(N_("no decision table %(key)s"), params={"key": repr(key)})
        table = decision_tables.table_view(shown)
    return render(request, "admin_decision.html", {"versions": versions, "shown": shown, "table": table,
                                                   "section": "models"})


@router.get("/models/{key}")
def model_page(request: Request, key: str, version: int | None = None) -> Response:
    _admin(request, "model.read")
    return model_page_response(request, key, version)


def model_page_response(request: Request, key: str, version: int | None, *, error: FormErrors | None = None,
                        migration: dict[str, Any] | None = None, status: int = 200) -> Response:
    """A model's page: its versions (with their running instances, for administrators), the diagram, and the
    migration form with the dry run's or the migration's outcome."""
    user = require_user(request)
    with request.app.state.tansiq.db.reading() as session:
        versions = process_models.list_versions(session, key[:200])
        if not versions:
            raise NotFound(N_("no process model %(key)s"), params={"key": repr(key)})
        shown = next((m for m in versions if m.version == version), None) if version else max(
            versions, key=lambda m: m.version)
        if shown is None:
            raise NotFound(N_("no process model %(key)s version %(version)s"),
                           params={"key": repr(key), "version": str(version)})
        operates = access.allowed(user, "instance.operate")
        counts = instance_migration.counts_by_version(session, shown.key) if operates else {}
        used = [decision_tables.get_decision(session, key, version)
                for key, version in sorted((shown.decision_versions or {}).items())]
        tables = [(decision, decision_tables.table_view(decision)) for decision in used]
    return render(request, "admin_model.html", {
        "versions": versions, "shown": shown, "section": "models", "counts": counts, "operates": operates,
        "newer": [v.version for v in versions if v.version > shown.version], "error": error,
        "migration": migration, "tables": tables}, status=status)


@router.get("/models/{key}/{version}/diagram.xml")
def model_xml(request: Request, key: str, version: int) -> Response:
    user = _admin(request, "model.read")
    with request.app.state.tansiq.db.reading() as session:
        xml = process_models.get_model(session, key[:200], version).bpmn_xml
    from api.web.core import language_of

    return xml_response(xml, language_of(request, user))
