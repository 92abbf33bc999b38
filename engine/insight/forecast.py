"""The escalation forecast: what will escalate in the next 24 and 72 hours, per entity and level, from the
timers that are set; and, for each open step due soon, the probability that it misses its due moment.

The probability is the empirical one, nothing fitted: of the earlier visits of the same step (the same
element of a model) by the same entity, the share still open at this visit's age now that stayed open longer
than this visit will have had at its due moment:

    P(miss) = S(age + left) / S(age)     S(h) = the share of visits open longer than h hours

with `age` the working hours the step has been open and `left` the working hours to its due moment, both in
the season's business calendar (a Friday does not count in a Sunday-to-Thursday calendar). S is read from the
kept buckets of `engine.work.step_figures` by the life-table (actuarial) method: completed visits by their time
open, and the visits open now, by their age, as lasting at least that long (leaving them out would make
long steps look shorter than they are). With fewer than MIN_HISTORY completed visits the step's visits by
every entity are used; with fewer still, the entity's overall share of steps closed late (the naive baseline).
A step past its due moment has missed it (probability 1): `past_due` counts those.
`bench/forecast_backtest.py` measures how good this is.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Table, and_, case, func, literal, select
from sqlalchemy.orm import Session

from engine.calendar.business_calendar import SEASON, BusinessCalendar, calendar_of, working_hours_between
from engine.calendar.durations import RIYADH
from engine.directives.tallies import hours_expression
from engine.foundation import clock
from engine.insight.bottlenecks import percentile
from engine.storage.db import UTCDateTime
from engine.work.step_figures import BUCKET_FIGURES, BUCKETS, NONE, StepTally, bucket_of, local_midnight

WINDOWS = (24, 72)  # hours ahead
MIN_HISTORY = 10  # completed visits before a history speaks for an entity's step
ENTITY, EVERY_ENTITY, BASELINE, OVERDUE = "entity", "every_entity", "baseline", "overdue"
BASES = (ENTITY, EVERY_ENTITY, BASELINE, OVERDUE)


@dataclass
class EscalationOutlook:
    entity: str
    level: int
    within: dict[int, int]  # window hours -> escalations due within them


@dataclass(frozen=True)
class ComingEscalation:
    instance_id: int
    directive_id: int | None
    reference: str | None
    title: str | None
    title_en: str | None
    entity: str
    level: int
    due_at: datetime


def _table(name: str) -> Table:
    """Another module's table, by name (engine.directives.directives and engine.calendar.seasons import what
    imports this)."""
    return StepTally.metadata.tables[name]


def _timer_window(now: datetime, hours: int, entity: str | None) -> Any:
    """The set escalation timers due within `hours` (of `entity`), from the timers' own indexes."""
    timer = _table("escalation_timer")
    window = and_(timer.c.due_at >= now, timer.c.due_at < now + timedelta(hours=hours))
    return window if entity is None else and_(window, timer.c.entity == entity)


def escalations_ahead(session: Session, now: datetime | None = None, *,
                      entity: str | None = None) -> list[EscalationOutlook]:
    """Per entity and level, the escalations due within each of WINDOWS, from the set timers."""
    now = now or clock.now()
    timer = _table("escalation_timer")
    soon = func.sum(case((timer.c.due_at < now + timedelta(hours=WINDOWS[0]), 1), else_=0))
    rows = session.execute(select(timer.c.entity, timer.c.level, soon, func.count())
                           .where(_timer_window(now, max(WINDOWS), entity))
                           .group_by(timer.c.entity, timer.c.level).order_by(timer.c.entity, timer.c.level))
    return [EscalationOutlook(code, level, {WINDOWS[0]: int(first or 0), WINDOWS[1]: int(total)})
            for code, level, first, total in rows]


def coming_escalations(session: Session, now: datetime | None = None, *, hours: int = WINDOWS[-1],
                       entity: str | None = None, limit: int = 100) -> list[ComingEscalation]:
    """The escalations due within `hours`, soonest first."""
    now = now or clock.now()
    timer, directive = _table("escalation_timer"), _table("directive")
    rows = session.execute(
        select(timer.c.instance_id, directive.c.id, directive.c.reference, directive.c.title, directive.c.title_en,
               timer.c.entity, timer.c.level, timer.c.due_at)
        .select_from(timer.outerjoin(directive, directive.c.instance_id == timer.c.instance_id))
        .where(_timer_window(now, hours, entity)).order_by(timer.c.due_at, timer.c.level, timer.c.id).limit(limit))
    return [ComingEscalation(*row) for row in rows]


# --- the probability that a step misses its due moment ------------------------------------------------

@dataclass(frozen=True)
class History:
    """The visits of one step by one entity (or every entity): the completed ones by time open, and the
    ones still open by their age so far (censored: they lasted at least that long)."""

    histogram: tuple[int, ...]
    still_open: tuple[int, ...] = (0,) * len(BUCKET_FIGURES)

    @cached_property
    def visits(self) -> int:
        return sum(self.histogram)

    @cached_property
    def median(self) -> float | None:
        return percentile(list(self.histogram), 0.5)

    def survival(self, hours: float) -> float:
        """P(a visit stays open longer than `hours`), by the life-table (actuarial) method: in each bucket
        the completions are the events and the visits still open at an age in it are at risk for half of
        it; inside a bucket the estimate falls linearly. Without open visits this is the plain share of
        completed visits longer than `hours`."""
        index = min(bisect_right(BUCKETS, hours), len(BUCKETS))
        lower = BUCKETS[index - 1] if index else 0.0
        upper = BUCKETS[index] if index < len(BUCKETS) else 2 * lower  # the last bucket read as this wide
        alive, hazard = self._curve[index]
        return alive * (1 - hazard * min(1.0, max(0.0, hours - lower) / (upper - lower)))

    @cached_property
    def _curve(self) -> list[tuple[float, float]]:
        """Per bucket: the share still open at its start, and the share of those that complete in it."""
        at_risk = sum(self.histogram) + sum(self.still_open)
        alive, curve = 1.0, []
        for done, still in zip(self.histogram, self.still_open, strict=True):
            exposed = at_risk - still / 2
            hazard = done / exposed if exposed > 0 else 0.0
            curve.append((alive, hazard))
            alive *= 1 - hazard
            at_risk -= done + still
        return curve


@dataclass(frozen=True)
class Estimate:
    probability: float
    basis: str  # one of BASES
    visits: int  # the completed visits it rests on (0 for OVERDUE)
    median_hours: float | None
    age_hours: float
    left_hours: float


def miss_probability(history: History, age_hours: float, left_hours: float) -> float:
    """P(a visit still open after `age_hours` is still open after `age_hours + left_hours`)."""
    still_open_now = history.survival(age_hours)
    if still_open_now <= 0:
        return 1.0  # open longer than every visit before it: nothing says it will make it
    return min(1.0, history.survival(age_hours + left_hours) / still_open_now)


def estimate(opened_at: datetime, due_at: datetime, now: datetime, calendar: BusinessCalendar,
             own: History | None, everyone: History | None, baseline: float | None) -> Estimate | None:
    """The estimate for one open step, on the best history there is (None: no history and no baseline)."""
    age = working_hours_between(calendar, opened_at, now)
    if due_at <= now:
        return Estimate(1.0, OVERDUE, 0, None, age, 0.0)
    return estimate_in_hours(age, working_hours_between(calendar, now, due_at), own, everyone, baseline)


def estimate_in_hours(age: float, left: float, own: History | None, everyone: History | None,
                      baseline: float | None) -> Estimate | None:
    """The estimate for a step open `age` working hours with `left` to its due moment."""
    found = _probability(age, left, own, everyone, baseline)
    if found is None:
        return None
    probability, basis, history = found
    if history is None:
        return Estimate(probability, basis, 0, None, age, left)
    return Estimate(probability, basis, history.visits, history.median, age, left)


def _probability(age: float, left: float, own: History | None, everyone: History | None,
                 baseline: float | None) -> tuple[float, str, History | None] | None:
    """The probability, what it rests on and the history it was read from."""
    if own is not None and own.visits >= MIN_HISTORY:
        return miss_probability(own, age, left), ENTITY, own
    if everyone is not None and everyone.visits >= MIN_HISTORY:
        return miss_probability(everyone, age, left), EVERY_ENTITY, everyone
    return None if baseline is None else (baseline, BASELINE, None)


@dataclass
class StepRisk:
    work_item_id: int
    element_id: str
    entity: str
    due_at: datetime
    opened_at: datetime
    estimate: Estimate | None = None
    # What a page shows of it (`with_details`): its names, instance and directive.
    name: str = ""
    name_ar: str | None = None
    name_en: str | None = None
    instance_id: int | None = None
    directive_id: int | None = None
    reference: str | None = None
    title: str | None = None
    title_en: str | None = None


@dataclass
class Outlook:
    """The open steps due within a window (not those past due: they have missed already), per entity: how
    many, how many are expected to miss (the sum of their probabilities), how many are likely to (LIKELY or
    more); and the likeliest to miss, with their names and directives."""

    steps: list[StepRisk]
    due: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    expected: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    likely: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def due_total(self) -> int:
        return sum(self.due.values())

    @property
    def expected_total(self) -> float:
        return sum(self.expected.values())

    @property
    def likely_total(self) -> int:
        return sum(self.likely.values())


LIKELY = 0.5  # a step is called likely to miss from this probability


def outlook(session: Session, now: datetime | None = None, *, hours: int = WINDOWS[-1], entity: str | None = None,
            top: int = 50) -> Outlook:
    """Every open step due within the next `hours` weighed, the `top` likeliest to miss kept, in one pass over
    plain rows: at 1,000,000 directives some 20,000 steps are due within 72 hours."""
    now = now or clock.now()
    calendars = _calendars(session)
    rows = _open_steps_due(session, now, hours, entity, calendars)
    histories = _histories(session, {(row[1], row[2]) for row in rows}, now, calendars)
    baselines: dict[str, float | None] = {}
    found, ranked = Outlook([]), []
    for step_id, element_id, code, age, left in rows:
        own, everyone = histories.get((element_id, code)), histories.get((element_id, None))
        if _thin(own) and _thin(everyone) and code not in baselines:
            baselines[code] = late_share(session, code)
        guess = _probability(age, left, own, everyone, baselines.get(code))
        found.due[code] += 1
        if guess is not None:
            found.expected[code] += guess[0]
            found.likely[code] += guess[0] >= LIKELY
        ranked.append((-(guess[0] if guess else -1.0), left, step_id, element_id, code, age, own, everyone))
    for _, left, step_id, element_id, code, age, own, everyone in heapq.nsmallest(top, ranked):
        estimated = estimate_in_hours(age, left, own, everyone, baselines.get(code))
        found.steps.append(StepRisk(step_id, element_id, code, now + timedelta(hours=left), now, estimated))
    with_details(session, found.steps)
    return found


def _thin(history: History | None) -> bool:
    return history is None or history.visits < MIN_HISTORY


def _open_steps_due(session: Session, now: datetime, hours: int, entity: str | None,
                    calendars: dict[int | None, BusinessCalendar]) -> list[tuple[int, str, str, float, float]]:
    """The open steps due within `hours` as (id, step, entity, working hours open, working hours left), from
    an index alone. When every season counts every hour, the database gives the hours; when one counts
    working days, the moments and the directive's season are read and the hours counted in its calendar."""
    item, directive = _table("work_item"), _table("directive")
    conditions = [item.c.status == "open", item.c.due_at >= now, item.c.due_at < now + timedelta(hours=hours)]
    if entity is not None:
        conditions.append(item.c.assignee_entity == entity)
    if all(calendar.mode == SEASON for calendar in calendars.values()):
        hours_between = hours_expression(session.get_bind().dialect.name)
        moment = literal(now, UTCDateTime())
        query = select(item.c.id, item.c.element_id, item.c.assignee_entity, hours_between(item.c.created_at, moment),
                       hours_between(moment, item.c.due_at)).where(*conditions)
        return [(step_id, element_id, code or NONE, age, left)
                for step_id, element_id, code, age, left in session.execute(query).all()]
    moments = (select(item.c.id, item.c.element_id, item.c.assignee_entity, item.c.created_at, item.c.due_at,
                      directive.c.season_id)
               .select_from(item.outerjoin(directive, directive.c.instance_id == item.c.instance_id))
               .where(*conditions))
    found: list[tuple[int, str, str, float, float]] = []
    for step_id, element_id, code, opened_at, due_at, season_id in session.execute(moments).all():
        calendar = calendars.get(season_id, BusinessCalendar())
        found.append((step_id, element_id, code or NONE, working_hours_between(calendar, opened_at, now),
                      working_hours_between(calendar, now, due_at)))
    return found


def with_details(session: Session, risks: list[StepRisk]) -> list[StepRisk]:
    """Fill in the names, instance and directive of these steps (one statement)."""
    if not risks:
        return risks
    item, directive = _table("work_item"), _table("directive")
    rows = {row.id: row for row in session.execute(
        select(item.c.id, item.c.instance_id, item.c.name, item.c.name_ar, item.c.name_en, item.c.created_at,
               item.c.due_at, directive.c.id.label("directive_id"), directive.c.reference, directive.c.title,
               directive.c.title_en)
        .select_from(item.outerjoin(directive, directive.c.instance_id == item.c.instance_id))
        .where(item.c.id.in_([risk.work_item_id for risk in risks])))}
    for risk in risks:
        row = rows[risk.work_item_id]
        risk.name, risk.name_ar, risk.name_en, risk.instance_id = row.name, row.name_ar, row.name_en, row.instance_id
        risk.opened_at, risk.due_at = row.created_at, row.due_at
        risk.directive_id, risk.reference, risk.title, risk.title_en = (row.directive_id, row.reference, row.title,
                                                                         row.title_en)
    return risks


def past_due(session: Session, now: datetime | None = None, *, entity: str | None = None) -> int:
    """How many open steps are past their due moment: those due before today from the kept figures, those due
    earlier today from the steps (through `ix_work_item_overdue` or the entity's inbox index)."""
    now = now or clock.now()
    item, table = _table("work_item"), StepTally.__table__
    today = now.astimezone(RIYADH).date()
    kept = [table.c.due_on < today, table.c.open_now != 0]
    since = local_midnight(today)
    live = [item.c.status == "open", item.c.due_at >= since, item.c.due_at < now]
    if entity is not None:
        kept.append(table.c.entity == entity)
        live.append(item.c.assignee_entity == entity)
    before_today = session.scalar(select(func.sum(table.c.open_now)).where(*kept)) or 0
    return int(before_today) + (session.scalar(select(func.count()).select_from(item).where(*live)) or 0)


def _histories(session: Session, pairs: Iterable[tuple[str, str]], now: datetime,
               calendars: dict[int | None, BusinessCalendar]) -> dict[tuple[str, str | None], History]:
    """The history of each (step, entity) and, under (step, None), of the step by every entity: completed
    visits by time open, and visits open now by their age (from the day they opened, at its local noon)."""
    elements = sorted({element for element, _ in pairs})
    if not elements:
        return {}
    table = StepTally.__table__
    done: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0] * len(BUCKET_FIGURES))
    for element_id, entity_code, *counts in session.execute(
            select(table.c.element_id, table.c.entity, *(func.sum(table.c[name]) for name in BUCKET_FIGURES))
            .where(table.c.element_id.in_(elements)).group_by(table.c.element_id, table.c.entity)):
        for key in ((element_id, entity_code), (element_id, None)):
            done[key] = [a + int(b or 0) for a, b in zip(done[key], counts, strict=True)]
    still: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0] * len(BUCKET_FIGURES))
    for element_id, entity_code, season_id, opened_on, count in session.execute(
            select(table.c.element_id, table.c.entity, table.c.season_id, table.c.opened_on, func.sum(table.c.open_now))
            .where(table.c.element_id.in_(elements), table.c.open_now > 0)
            .group_by(table.c.element_id, table.c.entity, table.c.season_id, table.c.opened_on)):
        opened_at = datetime.combine(opened_on, time(12), tzinfo=RIYADH)
        age = working_hours_between(calendars.get(season_id, BusinessCalendar()), opened_at, now)
        bucket = BUCKET_FIGURES.index(bucket_of(age))
        for key in ((element_id, entity_code), (element_id, None)):
            still[key][bucket] += int(count or 0)
    return {key: History(tuple(counts), tuple(still[key])) for key, counts in done.items()}


def late_share(session: Session, entity: str) -> float | None:
    """The entity's share of closed visits that closed late, every step and season (the naive baseline)."""
    table = StepTally.__table__
    closed, late = session.execute(
        select(func.sum(table.c.completed + table.c.withdrawn), func.sum(table.c.late)).where(table.c.entity == entity)
    ).one()
    return (late or 0) / closed if closed else None


def _calendars(session: Session) -> dict[int | None, BusinessCalendar]:
    season = _table("season")
    return {row.id: calendar_of(row.calendar_mode, row.holidays)
            for row in session.execute(select(season.c.id, season.c.calendar_mode, season.c.holidays))}


def brier(pairs: Iterable[tuple[float, bool]]) -> float:
    """The mean squared difference between probabilities and what happened (0 is perfect)."""
    scored = [(probability - (1.0 if missed else 0.0)) ** 2 for probability, missed in pairs]
    return sum(scored) / len(scored) if scored else float("nan")


@dataclass
class ForecastView:
    now: datetime
    entity: str | None
    escalations: list[EscalationOutlook]
    coming: list[ComingEscalation]
    outlook: Outlook  # the open steps due within 72 hours
    past_due: int  # open steps past their due moment

    @property
    def steps(self) -> list[StepRisk]:
        """The likeliest to miss of the open steps due within 72 hours."""
        return self.outlook.steps

    def totals(self) -> dict[int, int]:
        """Escalations due within each window, every entity and level."""
        return totals(self.escalations)


def totals(escalations: Iterable[EscalationOutlook]) -> dict[int, int]:
    """Escalations due within each of WINDOWS, summed over `escalations`."""
    listed = list(escalations)
    return {window: sum(o.within[window] for o in listed) for window in WINDOWS}


def view(session: Session, now: datetime | None = None, *, entity: str | None = None, limit: int = 50) -> ForecastView:
    """Everything the forecast page, its API and the reports show, for one entity or every one."""
    now = now or clock.now()
    return ForecastView(now, entity, escalations_ahead(session, now, entity=entity),
                        coming_escalations(session, now, entity=entity, limit=limit),
                        outlook(session, now, entity=entity, top=limit), past_due(session, now, entity=entity))
