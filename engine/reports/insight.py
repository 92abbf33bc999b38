"""The insight sections of the reports, read from the kept figures (`engine.work.step_figures`):

- seasonal: each model version's bottleneck steps (`engine.insight.bottlenecks.top_bottlenecks` of the season's
  heatmap), with its steps named in both languages;
- daily: the escalation forecast (`engine.insight.forecast`): escalations due per entity and level within 24 and
  72 hours, the open steps due within 72 hours and the number expected to miss their due moment, per
  entity, and the steps likeliest to miss.

The forecast is about the future, from the set escalation timers and the steps open *now*: neither can be
replayed for an earlier moment (a timer that fired is gone, a step closed since is no longer open, the
histories have grown). So it is always computed at the moment the report is made, which for today's report
is its `as_of`; a report of a day that has ended says so (`EscalationForecast.past_day`) rather than
pretend to be the forecast made at that day's end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from engine.bpmn.bpmn_runtime import StepName
from engine.insight import bottlenecks, forecast
from engine.people.entities import EntityRef, entity_refs_by_code, unknown_entity

TOP_STEPS = 5  # bottleneck steps per model version
TOP_RISKS = 10  # steps likeliest to miss, in the daily report


# --- seasonal: bottleneck steps ---------------------------------------------------------------------

@dataclass(frozen=True)
class BottleneckStep:
    element_id: str
    name_ar: str
    name_en: str
    visits: int
    p50_hours: float | None  # working hours open, median
    p90_hours: float | None
    beyond_buckets: bool  # the 90th percentile is longer than the longest bucket: "more than" p90_hours
    overdue_share: float | None
    rework_share: float | None
    open_now: int


@dataclass(frozen=True)
class ModelBottlenecks:
    model_id: int
    key: str
    version: int
    name_ar: str
    name_en: str
    steps: list[BottleneckStep]


def season_bottlenecks(session: Session, season_id: int) -> list[ModelBottlenecks]:
    """Every model version used in the season with its top bottleneck steps (a version whose steps were
    all seen too seldom to rank is left out)."""
    from engine.bpmn import process_models  # the runtime: loaded only when a seasonal report is made

    out = []
    for model_id, steps in bottlenecks.by_model(session, season_id).items():
        top = bottlenecks.top_bottlenecks(steps, TOP_STEPS)
        model = session.get(process_models.ProcessModel, model_id)
        if not top or model is None:
            continue
        names = process_models.compiled_model(model).step_names()
        out.append(ModelBottlenecks(model.id, model.key, model.version, model.name_ar or model.name,
                                    model.name_en or model.name, [_step(heat, names.get(heat.element_id))
                                                                  for heat in top]))
    return sorted(out, key=lambda m: (m.key, m.version))


def _step(heat: bottlenecks.StepHeat, name: StepName | None) -> BottleneckStep:
    plain = name.name if name else heat.element_id
    return BottleneckStep(
        heat.element_id, (name and name.name_ar) or plain, (name and name.name_en) or plain,
        heat.opened, _rounded(heat.p50), _rounded(heat.p90), heat.beyond_buckets, heat.overdue_share,
        heat.rework_share, heat.open_now)


def _rounded(value: float | None, places: int = 2) -> float | None:
    return None if value is None else round(value, places)


# --- daily: the escalation forecast -----------------------------------------------------------------

@dataclass(frozen=True)
class ForecastLevelRow:
    entity: EntityRef
    level: int
    within_24h: int
    within_72h: int


@dataclass(frozen=True)
class ForecastEntityRow:
    entity: EntityRef
    due_72h: int  # open steps due within 72 hours (not yet past due)
    expected_misses: float  # the sum of their probabilities of missing
    likely_misses: int  # of them, those with a probability of forecast.LIKELY or more


@dataclass(frozen=True)
class ForecastStep:
    reference: str | None
    title: str | None
    title_en: str | None
    step: str
    step_name_ar: str
    step_name_en: str
    entity: EntityRef
    due_at: datetime
    probability: float
    basis: str  # engine.insight.forecast.BASES


@dataclass(frozen=True)
class EscalationForecast:
    moment: datetime  # when it was computed: the moment the report was made
    past_day: bool  # the report's day had ended by then
    escalations: list[ForecastLevelRow]
    entities: list[ForecastEntityRow]
    steps: list[ForecastStep]  # the TOP_RISKS likeliest to miss, likeliest first

    def total(self, window: int) -> int:
        return sum(row.within_24h if window == 24 else row.within_72h for row in self.escalations)

    @property
    def expected_misses(self) -> float:
        return round(sum(row.expected_misses for row in self.entities), 2)


def escalation_forecast(session: Session, now: datetime, as_of: datetime) -> EscalationForecast:
    """The forecast made at `now` for a report whose snapshot is `as_of` (see the module's docstring).
    Steps already past due are left out: they have missed, and the report lists them as overdue."""
    refs = entity_refs_by_code(session)

    def ref(code: str) -> EntityRef:
        return refs.get(code) or unknown_entity(code)

    levels = [ForecastLevelRow(ref(o.entity), o.level, o.within[forecast.WINDOWS[0]], o.within[forecast.WINDOWS[1]])
              for o in forecast.escalations_ahead(session, now)]
    ahead = forecast.outlook(session, now, top=TOP_RISKS)  # every step due soon is weighed, not only a page
    return EscalationForecast(now, as_of < now, levels, _entity_rows(ahead, ref), _top(ahead.steps, ref))


def _entity_rows(ahead: forecast.Outlook, ref: Callable[[str], EntityRef]) -> list[ForecastEntityRow]:
    rows = [ForecastEntityRow(ref(code), due, round(ahead.expected[code], 2), ahead.likely[code])
            for code, due in ahead.due.items()]
    return sorted(rows, key=lambda r: (-r.expected_misses, -r.due_72h, r.entity.code))


def _top(risks: list[forecast.StepRisk], ref: Callable[[str], EntityRef]) -> list[ForecastStep]:
    """Steps with an estimate only: a step with neither history nor baseline has no probability to rank."""
    known = [(r, r.estimate) for r in risks if r.estimate is not None]  # step_risks sorted them likeliest first
    return [ForecastStep(r.reference, r.title, r.title_en, r.element_id, r.name_ar or r.name, r.name_en or r.name,
                         ref(r.entity), r.due_at, round(estimate.probability, 4), estimate.basis)
            for r, estimate in known[:TOP_RISKS]]
