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

from engine.access import Forbidden
from engine.db import Database
from engine.errors import Conflict, InvalidInput, NotFound, TansiqError
from engine.evidence_store import EvidenceTooLarge, UnsupportedEvidence
from engine.file_store import Located
from engine.logs import get_logger

BASE = "https://tansiq.example/problems/"
MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)

# kind -> (status, title)
KINDS: dict[str, tuple[int, str]] = {
    "bad-request": (400, "Bad request"),
    "unauthorized": (401, "Authentication required"),
    "forbidden": (403, "Not allowed"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "not-acceptable": (406, "Not acceptable"),
    "conflict": (409, "Conflict"),
    "payload-too-large": (413, "Request too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "invalid-input": (422, "Invalid input"),
    "model-rejected": (422, "Process model rejected"),
    "expression-error": (422, "Expression refused"),
    "service-task-error": (422, "Service task failed"),
    "too-many-requests": (429, "Too many requests"),
    "internal-error": (500, "Internal error"),
    "service-unavailable": (503, "Service unavailable"),
}
_BY_STATUS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
              406: "not-acceptable", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
              422: "invalid-input", 429: "too-many-requests", 500: "internal-error", 503: "service-unavailable"}


class FieldError(BaseModel):
    field: str
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
                     headers: dict[str, str] | None = None) -> JSONResponse:
    default_status, title = KINDS.get(kind, (status or 500, HTTPStatus(status or 500).phrase))
    status = status or default_status
    body: dict[str, Any] = {"type": BASE + kind, "title": title, "status": status}
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
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


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


def _clean(message: str) -> str:
    return message[:500]


def install(app: FastAPI) -> None:
    """Map every exception the app may meet to a problem response."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.kind, exc.detail, instance=request.url.path, headers=exc.headers,
                                errors=exc.errors)

    @app.exception_handler(TansiqError)
    async def _engine_error(request: Request, exc: TansiqError) -> JSONResponse:
        errors = [{"field": str(d.get("field", "")), "message": _clean(str(d.get("message", "")))}
                  for d in exc.details] or None
        return problem_response(engine_error_kind(exc), exc.message, instance=request.url.path, code=exc.code,
                                element_id=exc.element_id, errors=errors)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e.get("loc", ())), "message": _clean(str(e.get("msg", "invalid")))}
                  for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem_response("bad-request", "the request body is not valid JSON", instance=request.url.path,
                                    errors=errors)
        return problem_response("invalid-input", "the request does not match what this endpoint expects",
                                instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _BY_STATUS.get(exc.status_code, "bad-request" if exc.status_code < 500 else "internal-error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        if detail == HTTPStatus(exc.status_code).phrase:
            detail = None
        return problem_response(kind, detail, status=exc.status_code, instance=request.url.path,
                                headers=dict(exc.headers or {}))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict", path=request.url.path, error=str(exc.orig)[:300])
        return problem_response("conflict", "the change collides with one made at the same moment; try again",
                                instance=request.url.path)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            log.info("transaction conflict", path=request.url.path, error=str(exc.orig)[:300])
            return problem_response("conflict", "the change collided with another at the same moment; try again",
                                    instance=request.url.path)
        return _unavailable(request, exc)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return _unavailable(request, exc)
        log.error("database error", path=request.url.path, error=str(exc.orig)[:300])
        return problem_response("internal-error", "the request could not be completed", instance=request.url.path)


_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", path=request.url.path, error=str(getattr(exc, "orig", exc))[:300])
    return problem_response("service-unavailable", "the database cannot be reached; try again shortly",
                            instance=request.url.path, headers={"Retry-After": "5"})


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
