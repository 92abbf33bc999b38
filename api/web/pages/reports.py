"""Archived report runs (daily, periodic, seasonal) with links to download their files, and "make it now"
(through the report scheduler when there is one: workflows/dispatch.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.problems import attachment
from api.web.core import FormErrors, WebRoute, form_errors, redirect, render
from api.web.session import form_of, require_user
from engine.directives import access
from engine.foundation.errors import N_, InvalidInput, NotFound, TansiqError
from engine.reports import archive, runs
from workflows import dispatch

KINDS = ("daily", "periodic", "seasonal")

router = APIRouter(route_class=WebRoute)


@router.get("/reports")
def reports(request: Request, kind: str | None = None) -> Response:
    user = require_user(request)
    access.require(user, "report.read")
    return _reports_page(request, kind if kind in KINDS else None)


def _reports_page(request: Request, kind: str | None, *, error: FormErrors | None = None,
                  values: dict[str, str] | None = None, status: int = 200) -> Response:
    with request.app.state.tansiq.db.reading() as session:
        rows = runs.list_runs(session, kind=kind, limit=100)
    return render(request, "reports.html", {"rows": rows, "kind": kind, "error": error, "values": values or {}},
                  status=status)


@router.post("/reports/run")
async def run_now(request: Request) -> Response:
    user = require_user(request)
    access.require(user, "report.run")
    form = await form_of(request)
    values = {name: str(form.get(name) or "").strip() for name in ("kind", "day")}
    try:
        kind, day = _kind(values["kind"]), _day(values["day"])
        period: dict[str, Any] = {"day": day} if kind == "daily" else {"end": day} if kind == "periodic" else {}
        # A thread: the dispatch talks to Prefect with its own event loop, and the report may be made here.
        run = await run_in_threadpool(dispatch.request_run, request.app.state.tansiq.db, kind, **period,
                                      trigger="web", requested_by=user.username)
    except TansiqError as exc:
        return _reports_page(request, None, error=form_errors(request, exc), values=values, status=422)
    message = "report_queued" if run.status == runs.QUEUED else "report_made"
    return redirect(f"/reports?msg={message}#run-{run.id}")


def _kind(value: str) -> str:
    if value not in KINDS:
        raise InvalidInput(N_("choose the kind of report"))
    return value


def _day(value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(N_("%(value)s is not a date (YYYY-MM-DD)"), params={"value": repr(value)}) from None


@router.get("/reports/{run_id}/{index}")
def download(request: Request, run_id: int, index: int) -> Response:
    user = require_user(request)
    access.require(user, "report.read")
    with request.app.state.tansiq.db.reading() as session:
        run = runs.get(session, run_id) if 0 < run_id <= 2_147_483_647 else None
        if run is None or run.status != runs.SUCCEEDED or not 0 <= index < len(run.files or []):
            raise NotFound(N_("no file %(index)s in report run %(run)s"),
                           params={"index": str(index), "run": str(run_id)})
        entry = dict(run.files[index])
        found = archive.locate(session, entry, home=request.app.state.tansiq.settings.home)
    fmt = entry.get("format", "")
    name = archive.path_of(entry).name
    return attachment(request.app.state.tansiq.db, found, archive.MEDIA_TYPES.get(fmt, "application/octet-stream"),
                      name)
