"""What every page shares: the Jinja2 environments (one per language), rendering, navigation, and the
route class that turns engine errors into HTML pages with the same status codes as the API."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from api.deps import CurrentUser
from api.error_text import error_text, issue_text, said
from api.web import i18n
from api.web.labels import N_, label
from api.web.people import People
from api.web.session import (
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    CsrfRefused,
    NotSignedIn,
    csrf_token,
    current_user,
    remember_new_seed,
)
from engine.directives import access
from engine.directives.tags import tag_name
from engine.foundation.errors import TansiqError
from engine.foundation.logs import get_logger

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATUS_OF = {"not-found": 404, "forbidden": 403, "conflict": 409, "invalid-input": 422, "model-rejected": 422,
             "expression-error": 422, "service-task-error": 422, "evidence-too-large": 413,
             "unsupported-evidence-type": 415}
log = get_logger(__name__)


@cache
def environment(language: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "svg"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    translations = i18n.translations(language)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    gettext = translations.gettext
    env.globals.update(lang=language, dir=i18n.direction(language), calendar_words={
        "hijri_months": "|".join(i18n.HIJRI_MONTHS[language]),
        "gregorian_months": "|".join(i18n.GREGORIAN_MONTHS[language]),
        "weekdays": "|".join(i18n.WEEKDAYS[language])})
    env.filters.update(
        digits=lambda value: i18n.digits(value, language),
        num=lambda value, decimals=0: i18n.number(value, language, decimals),
        pct=lambda value: i18n.percent(value, language),
        dates=lambda value, with_time=True, weekday=False: i18n.both_calendars(value, language,
                                                                             with_time=with_time, weekday=weekday),
        plaindates=lambda value: i18n.plain_both_calendars(value, language),
        hours=lambda value: i18n.duration_hours(value, language),
        label=lambda value, group: gettext(label(group, value)) if value is not None else "",
        tag=lambda value: tag_name(value, language),
        localized=lambda row, field="name": _localized(row, field, language),
        tojson_attr=lambda value: json.dumps(value, ensure_ascii=False),
        said=lambda value: said(value, language),
    )
    return env


def _localized(row: Any, field: str, language: str) -> str:
    """`name_ar` / `name_en` (or `title` / `title_en`) of a row, in the page's language, with a fallback."""
    if row is None:
        return ""
    if field == "title":
        arabic, english = getattr(row, "title", None), getattr(row, "title_en", None)
    else:
        arabic = getattr(row, f"{field}_ar", None) or getattr(row, field, None)
        english = getattr(row, f"{field}_en", None)
    if language == "en":
        return english or arabic or ""
    return arabic or english or ""


def language_of(request: Request, user: CurrentUser | None = None) -> str:
    cached = getattr(request.state, "language", None)
    if cached:
        return cached
    language = i18n.pick_language(request.cookies.get(LANGUAGE_COOKIE), user.language if user else None)
    request.state.language = language
    return language


def gettext_for(request: Request) -> Callable[[str], str]:
    return i18n.translations(language_of(request, current_user(request))).gettext


# --- navigation ---------------------------------------------------------------------------------------

def navigation(user: CurrentUser | None) -> list[tuple[str, str]]:
    """(path, English label) of the pages the user's role may open, in menu order."""
    if user is None:
        return []
    items: list[tuple[str, str]] = []
    if access.allowed(user, "task.work"):
        items.append(("/inbox", N_("Inbox")))
    if access.allowed(user, "directive.read"):
        items.append(("/directives", N_("Directives")))
    if access.allowed(user, "directive.create"):
        items.append(("/directives/new", N_("New directive")))
    if access.allowed(user, "escalation.resolve") or user.role == "follow_up_officer":
        items.append(("/escalations", N_("Escalations")))
    if access.allowed(user, "insight.forecast"):
        items.append(("/insight/forecast", N_("Forecast")))
    if access.allowed(user, "report.read"):
        items.append(("/dashboard", N_("Dashboard")))
        items.append(("/insight/bottlenecks", N_("Bottlenecks")))
        items.append(("/reports", N_("Reports")))
    if access.allowed(user, "entity.manage"):
        items.append(("/admin", N_("Administration")))
    return items


def home_of(role: str) -> str:
    """Each role's home page."""
    return {
        "secretariat": "/directives",
        "entity_user": "/inbox",
        "follow_up_officer": "/inbox",
        "supervisor": "/escalations",
        "leadership": "/dashboard",
        "viewer": "/dashboard",
        "admin": "/admin/entities",
    }.get(role, "/directives")


# --- rendering ----------------------------------------------------------------------------------------

MESSAGES = {  # ?msg= keys the pages redirect with after a successful form (fixed texts, nothing reflected)
    "created": N_("The directive was saved as a draft."),
    "launched": N_("The directive was launched."),
    "cancelled": N_("The directive was cancelled."),
    "completed": N_("The step was completed."),
    "progress": N_("Progress was recorded."),
    "uploaded": N_("The evidence was uploaded."),
    "extension": N_("Your request for more time was sent to the supervisor."),
    "saved": N_("Saved."),
    "deployed": N_("The process model was deployed."),
    "decision_deployed": N_("The decision table was deployed: directives launched from now on follow it."),
    "unchanged": N_("This model is already deployed with the same content."),
    "claimed": N_("You took this step."),
    "report_queued": N_("The report was sent to the report scheduler; it appears below as queued, then ready."),
    "report_made": N_("The report was made; its files are below."),
    "retried": N_("The instance was retried and goes on."),
    "retry_failed": N_("The instance was retried and failed again: see the incident below."),
    "instance_cancelled": N_("The instance was cancelled."),
}


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    user = current_user(request)
    language = language_of(request, user)
    env = environment(language)
    message_key = request.query_params.get("msg")
    values: dict[str, Any] = {
        "request": request, "user": user, "nav": navigation(user), "path": request.url.path,
        "current_url": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        "csrf_token": csrf_token(request), "csrf_field": CSRF_FIELD,
        "message": MESSAGES.get(message_key or ""), "other_language": "en" if language == "ar" else "ar",
        "can": (lambda action: user is not None and access.allowed(user, action)),
        "urlencode": urlencode, "quote": quote,
    }
    if user is not None and access.allowed(user, "instance.operate"):
        values["incident_count"] = _incident_count(request)
    if user is not None:
        values["unread_count"] = unread_count(request, user)
        values["person"] = People(request.app.state.tansiq.db, i18n.translations(language).gettext)
    values.update(context or {})
    html = env.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")
    remember_new_seed(request, response)
    return response


def unread_count(request: Request, user: CurrentUser) -> int:
    """The bell's figure: one indexed count per page, kept on the request so a page that also shows it (the
    notification centre) does not count twice."""
    cached = getattr(request.state, "unread_notifications", None)
    if cached is None:
        from engine.delivery import notification_delivery

        with request.app.state.tansiq.db.reading() as session:
            cached = notification_delivery.unread_count(session, user.id)
        request.state.unread_notifications = cached
    return cached


def _incident_count(request: Request) -> int:
    """Incidents waiting for an administrator, for the navigation (one indexed count per page they open)."""
    from engine.work import incidents

    with request.app.state.tansiq.db.reading() as session:
        return incidents.count_incidents(session)


def redirect(url: str, *, htmx: bool = False) -> Response:
    if htmx:
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def error_page(request: Request, status: int, detail: str | None = None) -> HTMLResponse:
    """An error page; after a refused form, "back" leads to the page the form was on (its parent path)."""
    back = "/"
    if request.method == "POST":
        parent = request.url.path.rsplit("/", 1)[0]
        back = parent if parent.startswith("/") and parent not in ("", "/steps", "/escalations/bulk") else "/"
        if request.url.path.startswith("/escalations/"):
            back = "/escalations"
    return render(request, "error.html", {"status": status, "detail": detail, "back": back}, status=status)


# --- refused forms -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldError:
    """One input's problem as the page shows it: the input's id, its label and the message, translated."""

    field: str
    target: str | None
    label: str | None
    message: str


@dataclass
class FormErrors:
    """Everything wrong with a refused form, in the page's language: the summary's sentence and each field's
    message (templates: `m.errors(errors)` at the top, `m.invalid` on an input, `m.field_error` after it)."""

    message: str
    items: list[FieldError] = field(default_factory=list)

    def of(self, name: str) -> list[FieldError]:
        """The messages of field `name` and of its parts (`evidence/0`)."""
        return [item for item in self.items if item.field == name or item.field.startswith(name + "/")]

    def invalid(self, name: str, input_id: str) -> Markup:
        if not self.of(name):
            return Markup("")
        return Markup(' aria-invalid="true" aria-describedby="{}-error"').format(escape(input_id))

    def __str__(self) -> str:
        return self.message


# field path -> (the input's id, the label's message id); a field missing here is shown without a link
FieldTargets = Mapping[str, tuple[str, str | None]]


def form_errors(request: Request, exc: TansiqError, targets: FieldTargets | None = None) -> FormErrors:
    """The refused form's errors in the page's language, each field named by its label, never by its name."""
    language = language_of(request, current_user(request))
    gettext = i18n.translations(language).gettext
    targets = targets or {}
    items = []
    for issue in exc.fields:
        target, label_id = targets.get(issue.field) or targets.get(issue.field.split("/")[0]) or (None, None)
        items.append(FieldError(issue.field, target, gettext(label_id) if label_id else None,
                                issue_text(issue, language)))
    if not exc.fields:  # an engine error with free-form details (a rejected model's, an incident's)
        items = [FieldError(str(d.get("field", "")), None, None, gettext(str(d.get("message", ""))))
                 for d in exc.details]
    return FormErrors(error_text(exc, language), items)


_Refusal = TypeVar("_Refusal", bound=TansiqError)


def on_fields(exc: _Refusal, field_of_message: Mapping[str, str]) -> _Refusal:
    """An engine refusal without fields, counted against the field its message is about (when known)."""
    name = field_of_message.get(exc.message_id)
    if exc.fields or name is None:
        return exc
    return type(exc)(exc.message_id, params=exc.params, fields=exc.field_issues(name))


def translated(request: Request, exc: TansiqError) -> str:
    return error_text(exc, language_of(request, current_user(request)))


def safe_next(target: str | None) -> str | None:
    """Only a local path (never //host or a scheme) may be a redirect target."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


class WebRoute(APIRoute):
    """Pages answer HTML: a sign-in redirect, or an error page with the API's status codes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except NotSignedIn:
                target = "/login?" + urlencode({"next": request.url.path + (f"?{request.url.query}"
                                                                            if request.url.query else "")})
                if is_htmx(request):
                    return Response(status_code=401, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            except CsrfRefused as exc:
                return error_page(request, 403, str(exc))
            except TansiqError as exc:
                status = STATUS_OF.get(exc.code, 422)
                return error_page(request, status, translated(request, exc) if status not in (404,) else None)
            except RequestValidationError:
                return error_page(request, 400)

        return handler


