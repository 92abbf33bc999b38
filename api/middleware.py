"""The outermost guard of every request: a request id, security headers, a request size limit, and a
last-resort handler that turns any unexpected exception into a 500 problem without internals (and logs it).

The request id: an incoming `X-Request-ID` is kept only when it matches `SAFE_REQUEST_ID` (nginx sends its
`$request_id`, 32 hex digits), otherwise one is generated; it is echoed in every response's `X-Request-ID`
and bound with structlog's contextvars for the whole request, so every line logged while answering it
(Tansiq's, and stdlib ones such as uvicorn's access line, through engine/foundation/logs.py's formatter) carries it.
"""

from __future__ import annotations

import json
import os
import re
import traceback
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.foundation.logs import get_logger

log = get_logger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_PROBLEM_BASE = "https://tansiq.example/problems/"
# Letters, digits, `.`, `_`, `-`, 8 to 64 of them: no spaces, quotes or control characters to forge log
# lines or headers with, and short enough to index. Anything else is replaced by a fresh id.
SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")
REQUEST_ID_HEADER = b"x-request-id"


def request_id_from(incoming: bytes | None) -> str:
    """The caller's (proxy's) id when it is safe, else a new one shaped like nginx's (32 hex digits)."""
    if incoming is not None and SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming.decode("ascii")
    return os.urandom(16).hex()


def current_request_id() -> str | None:
    """The id of the request being answered in this context (None outside a request)."""
    return structlog.contextvars.get_contextvars().get("request_id")


class _TooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI's body parser lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"a request like this may carry at most {limit:,} bytes")


def _problem(status: int, kind: str, title: str, detail: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"type": _PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}).encode()
    return body, [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_multipart_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_multipart_bytes = max_multipart_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = request_id_from(headers.get(REQUEST_ID_HEADER))
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self._guarded(scope, receive, send, headers, request_id)
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes],
                       request_id: str) -> None:
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.max_multipart_bytes if content_type.startswith("multipart/") else self.max_json_bytes
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = dict(message)
                message["headers"] = [*message.get("headers", []),
                                      *((n, v) for n, v in SECURITY_HEADERS if n not in present),
                                      (REQUEST_ID_HEADER, request_id.encode("ascii"))]
            await send(message)

        async def respond(status: int, kind: str, title: str, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
            body, problem_headers = _problem(status, kind, title, detail)
            await send_with_headers({"type": "http.response.start", "status": status,
                                     "headers": problem_headers + extra})
            await send({"type": "http.response.body", "body": body})

        if b"%00" in scope.get("raw_path", b"") or b"%00" in scope.get("query_string", b"") or \
                "\x00" in scope.get("path", ""):
            await respond(422, "invalid-input", "Invalid input", "the address holds a NUL character", [])
            return

        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                await respond(400, "bad-request", "Bad request", "Content-Length is not a number", [])
                return
            if declared_size > limit:
                await respond(413, "payload-too-large", "Request too large",
                              f"a request like this may carry at most {limit:,} bytes", [(b"connection", b"close")])
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge:
            if started:
                raise
            await respond(413, "payload-too-large", "Request too large",
                          f"a request like this may carry at most {limit:,} bytes", [(b"connection", b"close")])
        except Exception as exc:
            incident = uuid.uuid4().hex[:12]
            # The stack without local variables: they may hold passwords or tokens, and can be huge.
            stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=30))
            log.error("unhandled error", path=scope.get("path"), method=scope.get("method"), incident=incident,
                      request_id=request_id, error_type=type(exc).__name__, stack=stack[-8000:])
            if started:
                raise
            await respond(500, "internal-error", "Internal error",
                          f"something went wrong on our side (incident {incident}, request {request_id}); "
                          "it has been logged", [])


def security_headers() -> dict[str, Any]:
    return {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
