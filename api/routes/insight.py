"""Insight over REST: the bottleneck heatmap of a model version (the roles that read every directive) and
the escalation forecast (an entity user sees their own entity's)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import CurrentUser, State, requires
from api.problems import documented
from api.schemas.insight import (
    ComingEscalationOut,
    EscalationOutlookOut,
    ForecastOut,
    HeatmapOut,
    StepHeatOut,
    StepRiskOut,
)
from engine.calendar import seasons
from engine.directives import access
from engine.directives.directives import TRACKS
from engine.insight import bottlenecks, forecast
from engine.insight.bottlenecks import HeatFilter, ModelHeat

router = APIRouter(tags=["insight"])
Code = Annotated[str | None, Query(min_length=1, max_length=100, description="An entity's code.")]


@router.get("/insight/heatmap", operation_id="getHeatmap", response_model=HeatmapOut, responses=documented(403, 404))
def heatmap(
    state: State, caller: Annotated[CurrentUser, requires("insight.bottlenecks")],
    model: Annotated[str, Query(min_length=1, max_length=200, description="A model key.")],
    version: Annotated[int | None, Query(ge=1, le=2_147_483_647, description="The newest when left out.")] = None,
    season: Annotated[int | None, Query(ge=1343, le=1500, description="A season's Hijri year.")] = None,
    entity: Code = None,
    track: Literal[TRACKS] | None = None,  # type: ignore[valid-type]
    opened_from: Annotated[date | None, Query(description="Visits opened on or after this local day.")] = None,
    opened_until: Annotated[date | None, Query(description="Visits opened on or before this local day.")] = None,
    measure: Literal[bottlenecks.MEASURES] = "overdue",  # type: ignore[valid-type]
) -> HeatmapOut:
    """Per step of a model version: time open (median, 90th percentile), the share overdue, rework and the
    steps open now, from the kept figures; `measure` chooses what colours the steps (`band`)."""
    with state.db.reading() as session:
        season_id = seasons.get_season(session, season).id if season is not None else None
        where = HeatFilter(season_id, entity, track, opened_from, opened_until)
        return heatmap_out(bottlenecks.for_model(session, model, version, where, measure), season)


def heatmap_out(heat: ModelHeat, season: int | None) -> HeatmapOut:
    where = heat.where
    return HeatmapOut(
        model=heat.model.key, version=heat.model.version, measure=heat.measure, thresholds=heat.thresholds,
        season=season, entity=where.entity, track=where.track, opened_from=where.opened_from,
        opened_until=where.opened_until,
        steps=[StepHeatOut(
            element_id=step.element_id, name=name.name, name_ar=name.name_ar, name_en=name.name_en,
            opened=step.opened, open_now=step.open_now, overdue_now=step.overdue_now, completed=step.completed,
            withdrawn=step.withdrawn, late=step.late, overdue_share=step.overdue_share, reworks=step.reworks,
            rework_share=step.rework_share, p50_hours=step.p50, p90_hours=step.p90,
            p90_beyond_buckets=step.beyond_buckets, mean_hours=step.hours / step.completed if step.completed else None,
            band=step.band) for step, name in heat.steps])


@router.get("/insight/forecast", operation_id="getForecast", response_model=ForecastOut, responses=documented(403, 404))
def forecast_route(
    state: State, caller: Annotated[CurrentUser, requires("insight.forecast")], entity: Code = None,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many escalations and steps.")] = 50,
) -> ForecastOut:
    """What will escalate in the next 24 and 72 hours, per entity and level, from the timers set; and the
    open steps due in the next 72 hours with the probability that each misses its due moment."""
    with state.db.reading() as session:
        scope = access.forecast_entity(session, caller, entity)
        return forecast_out(forecast.view(session, entity=scope, limit=limit))


def forecast_out(view: forecast.ForecastView) -> ForecastOut:
    short, long = forecast.WINDOWS
    return ForecastOut(
        now=view.now, entity=view.entity, due_within_72h=view.outlook.due_total,
        expected_misses=round(view.outlook.expected_total, 3), likely_misses=view.outlook.likely_total,
        past_due=view.past_due,
        escalations=[EscalationOutlookOut(entity=o.entity, level=o.level, within_24h=o.within[short],
                                          within_72h=o.within[long]) for o in view.escalations],
        coming=[ComingEscalationOut(**vars(c)) for c in view.coming],
        steps=[_risk_out(risk) for risk in view.steps])


def _risk_out(risk: forecast.StepRisk) -> StepRiskOut:
    assert risk.instance_id is not None, "a step shown has its details (forecast.with_details)"
    estimate = risk.estimate
    return StepRiskOut(
        work_item_id=risk.work_item_id, instance_id=risk.instance_id, directive_id=risk.directive_id,
        reference=risk.reference, title=risk.title, element_id=risk.element_id, name=risk.name, entity=risk.entity,
        due_at=risk.due_at, probability=estimate.probability if estimate else None,
        basis=estimate.basis if estimate else None, visits=estimate.visits if estimate else 0,
        median_hours=estimate.median_hours if estimate else None, age_hours=estimate.age_hours if estimate else None,
        left_hours=estimate.left_hours if estimate else None)
