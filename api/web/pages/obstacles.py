"""Recurring obstacles (issue 9): the tags found on directives or pilgrim feedback both this season and in
the previous one, with their counts and the entities concerned (`engine.insight.obstacles`), for the roles that
read reports."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from api.web.core import WebRoute, render
from api.web.session import require_user
from engine.calendar.seasons import Season
from engine.directives import access
from engine.insight import obstacles

router = APIRouter(route_class=WebRoute)


def _year(text: str) -> int | None:
    return int(text) if text.isdigit() and 1343 <= int(text) <= 1500 else None


@router.get("/obstacles")
def recurring(request: Request, season: str = "", previous: str = "") -> Response:
    user = require_user(request)
    access.require(user, "report.read")
    with request.app.state.tansiq.db.reading() as session:
        view = obstacles.recurring_for_year(session, _year(season), _year(previous))
        seasons_list = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
    return render(request, "obstacles.html", {"view": view, "seasons": seasons_list})
