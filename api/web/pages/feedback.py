"""Pilgrim feedback (issue 9): the unit's list (filters, figures, choose several and raise a directive),
the raise-a-directive form, and the public form that needs no sign-in.

The public form keeps every defence of the API's (`engine.feedback.public_intake`): a rate limit per
client address kept in the database (shared with the API's form: the same key, the same counters), a
signed form token that must be at least a few seconds old and is used once, a hidden honeypot field
(filled: the pilgrim is thanked and nothing is stored), and text checks (no links, no direction
overrides). The page adds the UI's own CSRF token on top."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from api.routes.feedback import HONEYPOT, LIMITS
from api.routes.feedback import public_form_key as feedback_key
from api.web import i18n
from api.web.core import FieldError, FormErrors, WebRoute, form_errors, gettext_for, redirect, render
from api.web.forms import deadline_from_form
from api.web.labels import N_
from api.web.session import form_of, require_user
from engine import feedback
from engine.bpmn import process_models
from engine.calendar.durations import RIYADH
from engine.directives import access
from engine.directives.directives import KINDS, PRIORITIES, TRACKS, Directive, NewDirective
from engine.feedback import FeedbackFilters, PublicSubmission
from engine.foundation.errors import Forbidden, InvalidInput, NotFound, TansiqError
from engine.people import entities
from engine.people.roles import role_word
from engine.storage.db import MAX_ID

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50
SERVICE_WORDS = {"housing": N_("Housing"), "transport": N_("Transport"), "reception": N_("Reception"),
                 "departure": N_("Departure"), "other": N_("Other")}
STATUS_WORDS = {"new": N_("New"), "reviewed": N_("Reviewed"), "raised": N_("Directive raised"),
                "dismissed": N_("Dismissed")}
PUBLIC_FIELD_WORDS = {  # the public form's problems, per field, in words a pilgrim reads
    "token": N_("The form was sent too quickly, or has expired. Wait a few seconds and send it again."),
    "service": N_("Choose the service."), "rating": N_("Choose a rating from 1 to 5."),
    "entity": N_("Choose an entity from the list, or leave it empty."),
    "text": N_("Write your opinion in 3 to 2,000 characters, without links or e-mail addresses."),
}
PUBLIC_TARGETS = {"service": ("pf-service", N_("Which service?")), "rating": ("pf-rating-1", N_("Your rating")),
                  "entity": ("pf-entity", N_("Entity (if you know it)")), "text": ("pf-text", N_("Your opinion"))}
TRIAGE_STATUSES = (feedback.NEW, feedback.REVIEWED, feedback.DISMISSED)  # `raised` comes from raising a directive
FILTERS = ("service", "entity", "status", "rating_min", "rating_max", "q", "received_from", "received_to")


def _reader(request: Request) -> Any:
    user = require_user(request)
    if not feedback.can_read(user):
        raise Forbidden(N_("%(role)s may not read pilgrim feedback"), params={"role": role_word(user.role)})
    return user


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _filters(request: Request) -> dict[str, str]:
    """The list's filters from the query string; unknown or malformed values are dropped."""
    raw = {name: (request.query_params.get(name) or "").strip()[:200] for name in FILTERS}
    def rating(v: str) -> bool:
        return len(v) == 1 and v in "12345"

    checks = {"service": lambda v: v in feedback.SERVICES, "status": lambda v: v in feedback.STATUSES,
              "rating_min": rating, "rating_max": rating,
              "received_from": lambda v: _day(v) is not None, "received_to": lambda v: _day(v) is not None,
              "entity": lambda v: len(v) <= 50 and "\x00" not in v, "q": lambda v: "\x00" not in v}
    return {k: v for k, v in raw.items() if v and checks[k](v)}


def _engine_filters(chosen: dict[str, str]) -> FeedbackFilters:
    def start_of(text: str | None, days: int = 0) -> datetime | None:
        day = _day(text or "")
        return datetime.combine(day + timedelta(days=days), time(0), tzinfo=RIYADH) if day else None

    return FeedbackFilters(
        service=chosen.get("service"), entity=chosen.get("entity"), status=chosen.get("status"),
        rating_min=int(chosen["rating_min"]) if "rating_min" in chosen else None,
        rating_max=int(chosen["rating_max"]) if "rating_max" in chosen else None, text=chosen.get("q"),
        received_from=start_of(chosen.get("received_from")),
        received_to=start_of(chosen.get("received_to"), days=1))  # the whole last day


@router.get("/feedback")
def feedback_list(request: Request, page: int = 1) -> Response:
    user = _reader(request)
    chosen = _filters(request)
    page = max(1, min(page, 100_000))
    with request.app.state.tansiq.db.reading() as session:
        rows, total = feedback.search(session, user, _engine_filters(chosen), limit=PAGE_SIZE,
                                      offset=(page - 1) * PAGE_SIZE)
        figures = feedback.figures(session, user, _engine_filters(chosen))
        linked = _visible_links(session, user, feedback.linked_directives(session, [r.id for r in rows]))
        entity_list = entities.list_entities(session) if access.reads_all(user) else []
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    return render(request, "feedback.html", {
        "rows": rows, "total": total, "page": page, "pages": pages, "filters": chosen, "figures": figures,
        "linked": linked, "entities": entity_list, "services": feedback.SERVICES, "statuses": feedback.STATUSES,
        "service_words": SERVICE_WORDS, "status_words": STATUS_WORDS, "may_raise": feedback.can_raise(user),
        "may_triage": feedback.can_triage(user), "triage_statuses": TRIAGE_STATUSES,
        "query_without_page": urlencode(chosen)})


def _visible_links(session: Any, user: Any, linked: dict[int, list[Directive]]) -> dict[int, list[Directive]]:
    """Only the raised directives the user may see (an entity user's feedback may have gone to another entity)."""
    ids = {d.id for directives in linked.values() for d in directives}
    seen = set(session.scalars(access.visible_directives(select(Directive.id).where(Directive.id.in_(ids)), user))
               ) if ids else set()
    return {item: [d for d in directives if d.id in seen] for item, directives in linked.items()}


@router.post("/feedback/{feedback_id}/status")
async def triage(request: Request, feedback_id: int) -> Response:
    """Mark an item reviewed or dismissed (or new again); back to the list as it was filtered."""
    user = require_user(request)
    form = await form_of(request)
    if not 0 < feedback_id <= MAX_ID:
        raise NotFound(N_("no feedback %(feedback)s"), params={"feedback": str(feedback_id)})
    with request.app.state.tansiq.db.transaction() as session:
        feedback.update(session, user, feedback_id, status=str(form.get("status") or ""))
    back = str(form.get("back") or "")
    target = back if back == "/feedback" or back.startswith("/feedback?") else "/feedback"
    return redirect(target)


# --- raising a directive ---------------------------------------------------------------------------------

def _ids(values: list[Any]) -> list[int]:
    ids = [int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) <= 10
           and 0 < int(v) <= MAX_ID]
    if not ids:
        raise InvalidInput("choose one or more feedback items")
    return list(dict.fromkeys(ids))


def _raise_form(request: Request, user: Any, ids: list[int], values: dict[str, Any], *,
                error: TansiqError | None = None) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        items = feedback.visible_items(session, ids, user)
        context = {"items": items, "ids": ids, "entities": [e for e in entities.list_entities(session) if e.active],
                   "models": process_models.list_models(session)}
    return render(request, "feedback_raise.html", {
        **context, "values": values, "kinds": KINDS, "tracks": TRACKS, "priorities": PRIORITIES,
        "hijri_months": i18n.HIJRI_MONTHS, "service_words": SERVICE_WORDS,
        "error": form_errors(request, error) if error else None},
        status=422 if error else 200)


@router.get("/feedback/raise")
def raise_form(request: Request) -> Response:
    user = require_user(request)
    access.require(user, feedback.RAISE_ACTION)
    ids = _ids(request.query_params.getlist("ids"))
    with request.app.state.tansiq.db.reading() as session:
        suggested = feedback.suggest_directive(session, ids, user)
    values = {"title": suggested.title, "title_en": suggested.title_en or "", "kind": suggested.kind,
              "responsible_entity": suggested.responsible_entity, "body": suggested.body or "",
              "source": suggested.source or "", "tags": ", ".join(suggested.tags), "deadline_mode": "duration",
              "deadline_duration": str(suggested.deadline)}
    return _raise_form(request, user, ids, values)


def _directive_from(form: Any) -> NewDirective:
    title = str(form.get("title") or "").strip()
    if not title:
        raise InvalidInput("a directive needs a title")
    tags = [t.strip() for t in str(form.get("tags") or "").replace("،", ",").split(",") if t.strip()]
    return NewDirective(
        title=title, title_en=str(form.get("title_en") or "").strip() or None, kind=str(form.get("kind") or ""),
        responsible_entity=str(form.get("responsible_entity") or ""), deadline=deadline_from_form(form),
        body=str(form.get("body") or "").strip() or None, source=str(form.get("source") or "").strip() or None,
        track=str(form.get("track") or "business"), priority=str(form.get("priority") or "normal"), tags=tags,
        process_model_key=str(form.get("process_model_key") or "") or None)


@router.post("/feedback/raise")
async def raise_directive(request: Request) -> Response:
    user = require_user(request)
    access.require(user, feedback.RAISE_ACTION)
    form = await form_of(request)
    ids = _ids(form.getlist("ids"))
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    try:
        with request.app.state.tansiq.db.transaction() as session:
            directive = feedback.raise_directive(session, ids, user, _directive_from(form))
            directive_id = directive.id
    except TansiqError as exc:
        if exc.code in ("not-found", "forbidden"):
            raise
        return _raise_form(request, user, ids, values, error=exc)
    return redirect(f"/directives/{directive_id}?msg=created")


# --- the public form (no sign-in) -------------------------------------------------------------------------

def _public_page(request: Request, *, values: dict[str, Any] | None = None, token: str | None = None,
                 problems: list[dict[str, str]] | None = None, notice: str | None = None, status: int = 200,
                 headers: dict[str, str] | None = None) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        form = feedback.public_form(session, feedback_key(request))
    return render(request, "feedback_public.html", {
        "token": token or form["token"], "services": feedback.SERVICES, "entities": form["entities"],
        "service_words": SERVICE_WORDS, "honeypot": HONEYPOT, "values": values or {}, "max_text": LIMITS.max_text,
        "errors": _public_errors(request, problems) if problems else None, "notice": notice},
        status=status, headers=headers)


def _public_errors(request: Request, problems: list[dict[str, str]]) -> FormErrors:
    """The public form's problems in words a pilgrim reads, each next to its field (one message a field)."""
    gettext = gettext_for(request)
    items, seen = [], set()
    for problem in problems:
        name = str(problem.get("field") or "text")
        if name in seen:
            continue
        seen.add(name)
        target, label_id = PUBLIC_TARGETS.get(name, (None, None))
        words = PUBLIC_FIELD_WORDS.get(name, PUBLIC_FIELD_WORDS["text"])
        items.append(FieldError(name, target, gettext(label_id) if label_id else None, gettext(words)))
    return FormErrors(gettext(N_("Please check the form:")), items)


@router.get("/public/feedback")
def public_form(request: Request) -> Response:
    return _public_page(request)


@router.post("/public/feedback")
async def public_submit(request: Request) -> Response:
    form = await form_of(request)
    values = {k: str(form.get(k) or "") for k in ("service", "rating", "text", "entity", "token", HONEYPOT)}
    rating: Any = int(values["rating"]) if values["rating"].isdigit() and len(values["rating"]) == 1 else None
    submission = PublicSubmission(token=values["token"], service=values["service"], rating=rating,
                                  text=values["text"], entity=values["entity"] or None, website=values[HONEYPOT])
    address = request.client.host if request.client else "unknown"
    try:
        feedback.public_intake(request.app.state.tansiq.db, feedback_key(request), address, submission, LIMITS)
    except feedback.RateLimited as exc:
        return _public_page(request, values=values, status=429, notice="rate",
                            headers={"Retry-After": str(exc.retry_after)})
    except TansiqError as exc:
        problems = exc.details or [{"field": "text", "message": exc.message}]
        keep = None if any(p.get("field") == "token" for p in problems) else values["token"]
        return _public_page(request, values=values, token=keep, problems=problems, status=422)
    return redirect("/public/feedback/thanks")


@router.get("/public/feedback/thanks")
def public_thanks(request: Request) -> Response:
    return render(request, "feedback_thanks.html")
