"""Archived report runs (daily, periodic, seasonal) with links to download their files."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.problems import attachment
from api.web.core import WebRoute, render
from api.web.session import require_user
from engine import access
from engine.errors import NotFound
from engine.reports import archive, runs

router = APIRouter(route_class=WebRoute)


@router.get("/reports")
def reports(request: Request, kind: str | None = None) -> Response:
    user = require_user(request)
    access.require(user, "report.read")
    kind = kind if kind in ("daily", "periodic", "seasonal") else None
    with request.app.state.tansiq.db.reading() as session:
        rows = runs.list_runs(session, kind=kind, limit=100)
    return render(request, "reports.html", {"rows": rows, "kind": kind})


@router.get("/reports/{run_id}/{index}")
def download(request: Request, run_id: int, index: int) -> Response:
    user = require_user(request)
    access.require(user, "report.read")
    with request.app.state.tansiq.db.reading() as session:
        run = runs.get(session, run_id) if 0 < run_id <= 2_147_483_647 else None
        if run is None or run.status != runs.SUCCEEDED or not 0 <= index < len(run.files or []):
            raise NotFound(f"no file {index} in report run {run_id}")
        entry = dict(run.files[index])
        found = archive.locate(session, entry, home=request.app.state.tansiq.settings.home)
    fmt = entry.get("format", "")
    name = archive.path_of(entry).name
    return attachment(request.app.state.tansiq.db, found, archive.MEDIA_TYPES.get(fmt, "application/octet-stream"),
                      name)
