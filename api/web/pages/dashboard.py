"""The dashboard: KPIs per entity and per track (engine/reports/kpis.py), with bar charts drawn as SVG
shapes and labelled in HTML."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web.core import WebRoute, render
from api.web.session import require_user
from engine.directives import access
from engine.reports.kpis import kpis, season_choice

router = APIRouter(route_class=WebRoute)


@router.get("/dashboard")
def dashboard(request: Request, season: int | None = None) -> Response:
    user = require_user(request)
    access.require(user, "report.read")
    with request.app.state.tansiq.db.reading() as session:
        all_seasons, chosen = season_choice(session, season)
        figures = kpis(session, chosen)
    return render(request, "dashboard.html", {
        "entities": figures.entities, "tracks": figures.tracks, "totals": figures.totals, "levels": figures.levels,
        "scale": figures.scale, "now": figures.now, "seasons": all_seasons, "season": chosen})
