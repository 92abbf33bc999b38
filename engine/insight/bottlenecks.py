"""The bottleneck heatmap: per step of a model version, how long its visits stay open (median and 90th
percentile), the share that went overdue, how often it was reworked and how many are open now, for a
season, entity, track and period, read from the kept figures (`engine.work.step_figures`).

A visit went overdue when it closed after its due moment, or is open past it now: the kept figures count
the open steps due on the days before today, and those due earlier today are counted from the steps
(through `ix_work_item_overdue`: the only figure that moves with the clock). Percentiles are
read from the buckets of the kept figures, interpolated inside a bucket; beyond the last bucket the value
is that bucket's lower bound (reported as "more than").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from engine.calendar.durations import RIYADH
from engine.foundation import clock
from engine.foundation.errors import N_, InvalidInput
from engine.work.step_figures import BUCKET_FIGURES, BUCKETS, COUNTS, NO_SEASON, NONE, StepTally, local_midnight

MEASURES = ("overdue", "p50", "p90", "open", "rework")
BANDS = 4  # colours from calm (0) to hot (3)
SHARE_BANDS = (0.10, 0.25, 0.50)  # overdue and rework shares: up to 10 %, 25 %, 50 %, more
MIN_VISITS_TO_RANK = 5  # a step seen fewer times is not called a bottleneck


@dataclass(frozen=True)
class HeatFilter:
    season_id: int | None = None
    entity: str | None = None
    track: str | None = None
    opened_from: date | None = None  # the days the visits opened, both included
    opened_until: date | None = None


@dataclass
class StepHeat:
    element_id: str
    opened: int = 0
    open_now: int = 0
    overdue_now: int = 0  # open and past due now
    completed: int = 0
    withdrawn: int = 0
    late: int = 0  # closed after the due moment
    reworks: int = 0
    hours: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * len(BUCKET_FIGURES))
    band: int = 0

    @property
    def overdue(self) -> int:
        return self.late + self.overdue_now

    @property
    def overdue_share(self) -> float | None:
        return self.overdue / self.opened if self.opened else None

    @property
    def rework_share(self) -> float | None:
        return self.reworks / self.opened if self.opened else None

    @property
    def p50(self) -> float | None:
        return percentile(self.histogram, 0.5)

    @property
    def p90(self) -> float | None:
        return percentile(self.histogram, 0.9)

    @property
    def beyond_buckets(self) -> bool:
        """The 90th percentile lies past the last bucket (shown as "more than")."""
        return bool(self.completed) and sum(self.histogram[:-1]) < 0.9 * self.completed

    def measure(self, name: str) -> float | None:
        return {"overdue": self.overdue_share, "p50": self.p50, "p90": self.p90, "open": float(self.open_now),
                "rework": self.rework_share}[name]


def percentile(histogram: list[int], q: float) -> float | None:
    """The q-quantile of durations counted in the buckets, interpolated linearly inside its bucket."""
    total = sum(histogram)
    if not total:
        return None
    wanted, seen = q * total, 0
    for index, count in enumerate(histogram):
        if count and seen + count >= wanted:
            lower = BUCKETS[index - 1] if index else 0.0
            if index == len(BUCKETS):
                return float(BUCKETS[-1])
            return lower + (BUCKETS[index] - lower) * (wanted - seen) / count
        seen += count
    return float(BUCKETS[-1])


def heatmap(session: Session, model_ids: list[int], where: HeatFilter | None = None,
            now: datetime | None = None) -> dict[str, StepHeat]:
    """Each step's figures over the given model versions, as filtered."""
    where, now = where or HeatFilter(), now or clock.now()
    steps: dict[str, StepHeat] = {}
    table = StepTally.__table__
    today = now.astimezone(RIYADH).date()
    past_due = func.sum(case((table.c.due_on < today, table.c.open_now), else_=0)).label("past_due")
    figures = [*COUNTS, "hours", *BUCKET_FIGURES]
    query = (select(table.c.element_id, past_due, *(func.sum(table.c[name]).label(name) for name in figures))
             .where(table.c.process_model_id.in_(model_ids), *_tally_conditions(table, where))
             .group_by(table.c.element_id))
    for row in session.execute(query):
        step = steps.setdefault(row.element_id, StepHeat(row.element_id))
        for name in COUNTS:
            setattr(step, name, int(getattr(row, name) or 0))
        step.hours = float(row.hours or 0)
        step.histogram = [int(getattr(row, name) or 0) for name in BUCKET_FIGURES]
        step.overdue_now = int(row.past_due or 0)
    for element_id, count in _past_due_today(session, model_ids, where, now):
        steps.setdefault(element_id, StepHeat(element_id)).overdue_now += count
    return steps


def _tally_conditions(table: Any, where: HeatFilter) -> list[Any]:
    conditions = []
    if where.season_id is not None:
        conditions.append(table.c.season_id == where.season_id)
    if where.entity is not None:
        conditions.append(table.c.entity == where.entity)
    if where.track is not None:
        conditions.append(table.c.track == where.track)
    if where.opened_from is not None:
        conditions.append(table.c.opened_on >= where.opened_from)
    if where.opened_until is not None:
        conditions.append(table.c.opened_on <= where.opened_until)
    return conditions


def _past_due_today(session: Session, model_ids: list[int], where: HeatFilter,
                    now: datetime) -> list[tuple[str, int]]:
    """The open steps due earlier today (the kept figures count those of the days before), per step: read
    through `ix_work_item_overdue`, a few hours of due moments."""
    tables = StepTally.metadata.tables
    item, instance, directive = tables["work_item"], tables["process_instance"], tables["directive"]
    conditions = [item.c.status == "open", item.c.due_at >= local_midnight(now.astimezone(RIYADH).date()),
                  item.c.due_at < now, instance.c.model_id.in_(model_ids)]
    if where.entity is not None:
        conditions.append(func.coalesce(item.c.assignee_entity, NONE) == where.entity)
    if where.season_id is not None:
        conditions.append(func.coalesce(directive.c.season_id, NO_SEASON) == where.season_id)
    if where.track is not None:
        conditions.append(func.coalesce(directive.c.track, NONE) == where.track)
    if where.opened_from is not None:
        conditions.append(item.c.created_at >= local_midnight(where.opened_from))
    if where.opened_until is not None:
        conditions.append(item.c.created_at < local_midnight(where.opened_until + timedelta(days=1)))
    query = (select(item.c.element_id, func.count())
             .select_from(item.join(instance, instance.c.id == item.c.instance_id)
                          .outerjoin(directive, directive.c.instance_id == item.c.instance_id))
             .where(and_(*conditions)).group_by(item.c.element_id))
    return [(element_id, count) for element_id, count in session.execute(query)]


def band(steps: dict[str, StepHeat], measure: str) -> list[float]:
    """Colour every step by `measure` (its `band`, 0 to 3); return the band thresholds used: fixed shares
    for the shares, quarters of the largest value for hours and counts."""
    if measure not in MEASURES:
        raise ValueError(f"no such measure: {measure}")
    if measure in ("overdue", "rework"):
        thresholds = list(SHARE_BANDS)
    else:
        largest = max((step.measure(measure) or 0.0 for step in steps.values()), default=0.0)
        thresholds = [largest * quarter / BANDS for quarter in range(1, BANDS)]
    for step in steps.values():
        value = step.measure(measure)
        step.band = 0 if not value else sum(1 for threshold in thresholds if value > threshold)
    return thresholds


def top_bottlenecks(steps: dict[str, StepHeat], count: int = 5) -> list[StepHeat]:
    """The steps that lose the most: the largest share overdue, then the longest 90th percentile, among
    those seen at least MIN_VISITS_TO_RANK times."""
    ranked = [step for step in steps.values() if step.opened >= MIN_VISITS_TO_RANK]
    return sorted(ranked, key=lambda s: (-(s.overdue_share or 0), -(s.p90 or 0), s.element_id))[:count]


def by_model(session: Session, season_id: int, where: HeatFilter | None = None) -> dict[int, dict[str, StepHeat]]:
    """Every model version's steps in a season (the seasonal report)."""
    table = StepTally.__table__
    ids = sorted(session.scalars(select(table.c.process_model_id).where(table.c.season_id == season_id).distinct()))
    in_season = replace(where or HeatFilter(), season_id=season_id)
    return {model_id: heatmap(session, [model_id], in_season) for model_id in ids}


@dataclass
class ModelHeat:
    """A model version's heatmap, ready to draw: the steps of the model (every user task, seen or not)."""

    model: Any  # engine.bpmn.process_models.ProcessModel
    measure: str
    thresholds: list[float]
    where: HeatFilter
    steps: list[tuple[StepHeat, Any]]  # (figures, engine.bpmn.bpmn_runtime.StepName), in the model's order

    def by_element(self) -> dict[str, StepHeat]:
        return {heat.element_id: heat for heat, _ in self.steps}


def for_model(session: Session, key: str, version: int | None = None, where: HeatFilter | None = None,
              measure: str = "overdue", now: datetime | None = None) -> ModelHeat:
    """The heatmap of one version of a model (the newest when `version` is None)."""
    from engine.bpmn import process_models  # process models import the runtime: only when a heatmap is drawn

    if measure not in MEASURES:
        raise InvalidInput(N_("measure is one of %(known)s"), params={"known": ", ".join(MEASURES)})
    model = process_models.get_model(session, key, version)
    where = where or HeatFilter()
    figures = heatmap(session, [model.id], where, now)
    names = process_models.compiled_model(model).step_names()
    steps = [(figures.get(element_id) or StepHeat(element_id), name) for element_id, name in names.items()]
    thresholds = band({heat.element_id: heat for heat, _ in steps}, measure)
    return ModelHeat(model, measure, thresholds, where, steps)
