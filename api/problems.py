"""RFC 9457 problem details: every error the API returns, as `application/problem+json`.

Each kind of problem has a stable `type` URI (https://tansiq.example/problems/<kind>) that clients
can switch on; `title` names the kind, `detail` says what happened this time, and `element_id` /
`errors` are added when known. Nothing internal (stack traces, SQL) is ever returned.
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.error_text import accepted_language, error_list, error_text, issue_text, translate, validation_issue
from engine.directives.evidence_store import EvidenceTooLarge, UnsupportedEvidence
from engine.foundation.errors import N_, Conflict, FieldIssue, Forbidden, InvalidInput, NotFound, TansiqError
from engine.foundation.logs import get_logger
from engine.storage.db import Database
from engine.storage.file_store import Located

BASE = "https://tansiq.example/problems/"
MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)

# kind -> (status, title)
KINDS: dict[str, tuple[int, str]] = {
    "bad-request": (400, N_("Bad request")),
    "unauthorized": (401, N_("Authentication required")),
    "forbidden": (403, N_("Not allowed")),
    "not-found": (404, N_("Not found")),
    "method-not-allowed": (405, N_("Method not allowed")),
    "not-acceptable": (406, N_("Not acceptable")),
    "conflict": (409, N_("Conflict")),
    "payload-too-large": (413, N_("Request too large")),
    "unsupported-media-type": (415, N_("Unsupported media type")),
    "invalid-input": (422, N_("Invalid input")),
    "model-rejected": (422, N_("Process model rejected")),
    "expression-error": (422, N_("Expression refused")),
    "service-task-error": (422, N_("Service task failed")),
    "too-many-requests": (429, N_("Too many requests")),
    "internal-error": (500, N_("Internal error")),
    "service-unavailable": (503, N_("Service unavailable")),
}
_BY_STATUS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
              406: "not-acceptable", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
              422: "invalid-input", 429: "too-many-requests", 500: "internal-error", 503: "service-unavailable"}


class FieldError(BaseModel):
    field: str
    code: str | None = Field(default=None, description="What is wrong: required, min-length, maximum, enum, type, ...")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(examples=[BASE + "not-found"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = Field(default=None, description="The engine's machine-readable error code, when known.")
    element_id: str | None = Field(default=None, description="The BPMN element the problem is about, when known.")
    errors: list[FieldError] | None = None


class ApiProblem(Exception):
    """Raise from a route to answer with a problem of this kind."""

    def __init__(self, kind: str, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail or kind)
        self.kind, self.detail, self.headers, self.errors = kind, detail, headers or {}, errors


def problem_response(kind: str, detail: str | None = None, *, status: int | None = None,
                     instance: str | None = None, code: str | None = None, element_id: str | None = None,
                     errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None, language: str = "en") -> JSONResponse:
    """The problem; `detail` and the `errors` are already in `language`, the title is translated here."""
    default_status, title = KINDS.get(kind, (status or 500, HTTPStatus(status or 500).phrase))
    status = status or default_status
    body: dict[str, Any] = {"type": BASE + kind, "title": translate(title, None, language), "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if code:
        body["code"] = code
    if element_id:
        body["element_id"] = element_id
    if errors:
        body["errors"] = errors
    response = JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language"
    return response


def language_of(request: Request) -> str:
    """The problem's language: Arabic when `Accept-Language` prefers it, else English."""
    return accepted_language(request.headers.get("accept-language"))


def _said(request: Request, detail: str) -> tuple[str, str]:
    """A fixed detail (a catalogued message id) in the request's language, with that language."""
    language = language_of(request)
    return translate(detail, None, language), language


def engine_error_kind(exc: TansiqError) -> str:
    if isinstance(exc, EvidenceTooLarge):
        return "payload-too-large"
    if isinstance(exc, UnsupportedEvidence):
        return "unsupported-media-type"
    if isinstance(exc, Forbidden):
        return "forbidden"
    if isinstance(exc, NotFound):
        return "not-found"
    if isinstance(exc, Conflict):
        return "conflict"
    if isinstance(exc, InvalidInput):
        return "invalid-input"
    return exc.code if exc.code in KINDS else "invalid-input"


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        where, rest = parts[0], parts[1:]
        return f"{where}:{'/'.join(rest)}" if rest else where
    return "/".join(parts) or "(request)"


def _field_error(issue: FieldIssue, language: str) -> dict[str, str]:
    return {"field": issue.field, "code": issue.code, "message": issue_text(issue, language)[:500]}


def install(app: FastAPI) -> None:
    """Map every exception the app may meet to a problem response."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        language = language_of(request)
        detail = translate(exc.detail, None, language) if exc.detail else None
        return problem_response(exc.kind, detail, instance=request.url.path, headers=exc.headers,
                                errors=exc.errors, language=language)

    @app.exception_handler(TansiqError)
    async def _engine_error(request: Request, exc: TansiqError) -> JSONResponse:
        language = language_of(request)
        detail = exc.message if language == "en" else error_text(exc, language)
        return problem_response(engine_error_kind(exc), detail, instance=request.url.path, code=exc.code,
                                element_id=exc.element_id, errors=error_list(exc, language) or None,
                                language=language)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        language = language_of(request)
        issues = [validation_issue(_field(e.get("loc", ())), e) for e in exc.errors()]
        errors = [_field_error(issue, language) for issue in issues]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem_response("bad-request", translate(N_("the request body is not valid JSON"), None, language),
                                    instance=request.url.path, errors=errors, language=language)
        detail = translate(N_("the request does not match what this endpoint expects"), None, language)
        return problem_response("invalid-input", detail, instance=request.url.path, errors=errors, language=language)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _BY_STATUS.get(exc.status_code, "bad-request" if exc.status_code < 500 else "internal-error")
        detail: str | None = exc.detail if isinstance(exc.detail, str) else None  # FastAPI's may be any JSON
        if detail == HTTPStatus(exc.status_code).phrase:
            detail = None
        language = language_of(request)
        return problem_response(kind, translate(detail, None, language) if detail else None, status=exc.status_code,
                                instance=request.url.path, headers=dict(exc.headers or {}), language=language)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict", path=request.url.path, error=str(exc.orig)[:300])
        detail, language = _said(request, N_("the change collides with one made at the same moment; try again"))
        return problem_response("conflict", detail, instance=request.url.path, language=language)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            log.info("transaction conflict", path=request.url.path, error=str(exc.orig)[:300])
            detail, language = _said(request, N_("the change collided with another at the same moment; try again"))
            return problem_response("conflict", detail, instance=request.url.path, language=language)
        return _unavailable(request, exc)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return _unavailable(request, exc)
        log.error("database error", path=request.url.path, error=str(exc.orig)[:300])
        detail, language = _said(request, N_("the request could not be completed"))
        return problem_response("internal-error", detail, instance=request.url.path, language=language)


_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", path=request.url.path, error=str(getattr(exc, "orig", exc))[:300])
    detail, language = _said(request, N_("the database cannot be reached; try again shortly"))
    return problem_response("service-unavailable", detail, instance=request.url.path, headers={"Retry-After": "5"},
                            language=language)


def file_download(media_types: list[str], description: str) -> dict[int | str, dict[str, Any]]:
    """The 200 response of a download route, with every media type it may answer."""
    content = {media.split(";")[0]: {"schema": {} if media.startswith("application/json")
                                     else {"type": "string", "format": "binary"}} for media in media_types}
    return {200: {"content": content, "description": description}}


def content_disposition(filename: str) -> str:
    """`attachment`, with an ASCII fallback name and the real one in RFC 5987 form."""
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in " ._-()") else "_" for ch in filename)
    ascii_name = ascii_name.strip() or "evidence"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def attachment(db: Database, file: Located, media_type: str, filename: str) -> StreamingResponse:
    """A stored file as a download: never shown in place, never cached, sandboxed if opened anyway. Its
    content streams from the file store a chunk at a time (whichever node stored it), with its length."""
    return StreamingResponse(file.chunks(db), media_type=media_type, headers={
        "Content-Length": str(file.size),
        "Content-Disposition": content_disposition(filename),
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


# The problem responses every route documents (schemathesis and clients read them from the spec).
def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": Problem, "description": KINDS[_BY_STATUS[status]][1],
                 "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for status in statuses
    }
