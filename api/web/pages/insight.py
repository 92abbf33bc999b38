"""Insight pages: the bottleneck heatmap drawn on a model version's diagram (the roles that read every
directive), and the escalation forecast (an entity user sees their own entity's)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from api.web import i18n
from api.web.core import WebRoute, gettext_for, language_of, render
from api.web.labels import N_
from api.web.session import require_user
from engine.bpmn import process_models
from engine.calendar.seasons import Season
from engine.directives import access
from engine.directives.directives import TRACKS
from engine.foundation.errors import InvalidInput, Term
from engine.insight import bottlenecks, forecast
from engine.insight.bottlenecks import HeatFilter, ModelHeat
from engine.people import entities

router = APIRouter(route_class=WebRoute)
MEASURE_LABELS = {"overdue": N_("Share overdue"), "p50": N_("Median time open"),
                  "p90": N_("90th percentile of time open"), "open": N_("Open now"), "rework": N_("Share reworked")}


def _day(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(N_("%(what)s is a date like 2026-05-20"), params={"what": Term(what)}) from None


def _season(seasons: list[Season], year: str) -> Season | None:
    return next((s for s in seasons if str(s.hijri_year) == year.strip()), None) if year else None


@router.get("/insight/bottlenecks")
def bottlenecks_page(request: Request, model: str = "", version: str = "", season: str = "", entity: str = "",
                     track: str = "", opened_from: str = "", opened_until: str = "",
                     measure: str = "overdue") -> Response:
    user = require_user(request)
    access.require(user, "insight.bottlenecks")
    with request.app.state.tansiq.db.reading() as session:
        models = process_models.list_models(session)
        seasons = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
        key = model or (models[0].key if models else "")
        chosen_season = _season(seasons, season)
        where = HeatFilter(chosen_season.id if chosen_season else None, entity or None,
                           track if track in TRACKS else None, _day(opened_from, N_("From")),
                           _day(opened_until, N_("Until")))
        heat = None
        if key:
            heat = bottlenecks.for_model(session, key, int(version) if version.isdigit() else None, where,
                                         measure if measure in bottlenecks.MEASURES else "overdue")
        context = {
            "models": models, "seasons": seasons, "entities": entities.list_entities(session), "tracks": TRACKS,
            "heat": heat, "measures": MEASURE_LABELS, "chosen_season": chosen_season,
            "versions": process_models.list_versions(session, key) if key else [],
            "values": {"season": season, "entity": entity, "track": track, "opened_from": opened_from,
                       "opened_until": opened_until},
            "diagram_heat": diagram_heat(request, heat) if heat else None,
        }
    return render(request, "insight_bottlenecks.html", context)


def diagram_heat(request: Request, heat: ModelHeat) -> dict[str, dict[str, Any]]:
    """What diagram.js draws on each step: its colour band and a two-line badge in the page's language."""
    language, gettext = language_of(request), gettext_for(request)
    drawn = {}
    for step, _name in heat.steps:
        if not step.opened:
            continue
        times = gettext("%(p50)s / %(p90)s h") % {
            "p50": i18n.duration_hours(step.p50, language),
            "p90": ("> " if step.beyond_buckets else "") + i18n.duration_hours(step.p90, language)}
        shares = gettext("%(overdue)s overdue · %(open)s open") % {
            "overdue": i18n.percent(step.overdue_share, language), "open": i18n.number(step.open_now, language)}
        drawn[step.element_id] = {"band": step.band, "label": f"{times}\n{shares}"}
    return drawn


@router.get("/insight/forecast")
def forecast_page(request: Request, entity: str = "") -> Response:
    user = require_user(request)
    with request.app.state.tansiq.db.reading() as session:
        scope = access.forecast_entity(session, user, entity or None)
        view = forecast.view(session, entity=scope, limit=100)
        names = {e.code: e for e in entities.list_entities(session)}
    return render(request, "insight_forecast.html", {"view": view, "names": names, "windows": forecast.WINDOWS,
                                                      "entity_user": user.role == "entity_user"})
