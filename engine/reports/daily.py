"""The daily report (التقرير اليومي): what happened to the directives on one local day, and where they
stood at its end.

Every figure comes from a handful of set-based queries over the indexed projection columns of
directives, work items and escalations (GROUP BY and SUM(CASE ...)); no workflow state is loaded and
no query runs per directive. Snapshot figures are *as of* the end of the day (or now, for today):

- open: launched at or before `as_of` and not ended by then;
- overdue: open and past its deadline at `as_of`; days late = (as_of - deadline) in days;
- escalation level: the highest level among the directive's escalations raised by `as_of` and not
  resolved by then;
- open steps due today: work items due within the day, created by `as_of` and not completed or
  withdrawn by then.

A directive's deadline is its current one (an extension moves it; the report does not replay history).

The escalation forecast (`engine.reports.insight`) is computed at the moment the report is made, not at
`as_of`: it reads the timers set and the steps open now, which cannot be replayed for the end of a past
day. For today's report the two moments are the same; a past day's report says that its forecast is
today's. It covers every running directive, whatever season the report is scoped to (what runs now is of
the current season).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Integer, Select, SQLColumnExpression, Subquery, and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from engine.calendar.seasons import Season
from engine.directives.directives import CANCELLED, COMPLETED, Directive
from engine.foundation import clock
from engine.foundation.checks import present
from engine.people.entities import EntityRef, entity_refs, entity_refs_by_code, unknown_entity
from engine.reports import feedback, insight
from engine.reports.common import (
    DAILY,
    DataSource,
    ReportPeriod,
    SeasonRef,
    data_source,
    make_period,
    rate,
)
from engine.reports.feedback import FeedbackSummary
from engine.reports.settings import get_report_settings
from engine.work.escalations import Escalation
from engine.work.work_items import WorkItem


@dataclass(frozen=True)
class DailyCounts:
    received: int  # registered (created) that day
    launched: int
    completed: int
    completed_on_time: int
    cancelled: int
    open: int  # at as_of
    overdue: int  # at as_of
    steps_due: int  # open steps due that day
    escalations_raised: int
    escalations_resolved: int

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.completed_on_time, self.completed)


@dataclass(frozen=True)
class DueStep:
    reference: str
    title: str
    title_en: str | None
    step: str  # the BPMN element id
    step_name_ar: str | None
    step_name_en: str | None
    entity: EntityRef | None
    role: str | None
    due_at: datetime


@dataclass(frozen=True)
class OverdueDirective:
    reference: str
    title: str
    title_en: str | None
    entity: EntityRef
    priority: str
    track: str
    deadline_at: datetime
    days_late: float
    escalation_level: int


@dataclass(frozen=True)
class EscalationLevelCount:
    level: int
    raised: int
    resolved: int


@dataclass(frozen=True)
class EntityDayRow:
    entity: EntityRef
    open: int
    due_today: int
    overdue: int
    done: int
    done_on_time: int

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.done_on_time, self.done)


@dataclass(frozen=True)
class DailyReport:
    kind: str
    period: ReportPeriod
    generated_at: datetime
    source: DataSource
    season: SeasonRef | None
    counts: DailyCounts
    steps_due: list[DueStep]
    overdue: list[OverdueDirective]
    escalations: list[EscalationLevelCount]
    entities: list[EntityDayRow]
    feedback: FeedbackSummary | None  # HOOK (issue 9): None until a feedback source is registered
    forecast: insight.EscalationForecast | None = None  # made at `generated_at` (see the module's docstring)


def daily(session: Session, day: date, season: Season | None = None) -> DailyReport:
    """The daily report of local day `day`; with `season`, only that season's directives count."""
    settings = get_report_settings()
    now = clock.now()
    period = make_period(day, day, settings.zone, now)
    season_id = season.id if season is not None else None
    if season is None:
        season = _season_covering(session, day)
    source = data_source(session)
    refs = entity_refs(session)

    counts_row = _day_counts(session, period, season_id)
    entity_rows = _entity_rows(session, period, season_id, refs)
    overdue = overdue_directives(session, period.as_of, season_id, refs)
    steps = _steps_due(session, period, season_id)
    levels = _escalations(session, period, season_id)
    counts = DailyCounts(
        received=counts_row["received"], launched=counts_row["launched"], completed=counts_row["completed"],
        completed_on_time=counts_row["on_time"], cancelled=counts_row["cancelled"],
        open=sum(r.open for r in entity_rows), overdue=len(overdue), steps_due=len(steps),
        escalations_raised=sum(level.raised for level in levels),
        escalations_resolved=sum(level.resolved for level in levels),
    )
    return DailyReport(
        kind=DAILY, period=period, generated_at=now, source=source,
        season=SeasonRef.of(season) if season is not None else None, counts=counts, steps_due=steps,
        overdue=overdue, escalations=levels, entities=entity_rows,
        feedback=feedback.collect(session, period.starts_at, period.ends_at),
        forecast=insight.escalation_forecast(session, now, period.as_of),
    )


# --- building blocks, shared with the periodic and seasonal reports --------------------------------

# A moment: a value, or a column of one (a row of `day_windows` in the periodic report).
Moment = datetime | SQLColumnExpression[datetime]
_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def within(column: SQLColumnExpression[datetime | None], starts_at: Moment, ends_at: Moment) -> ColumnElement[bool]:
    return and_(column >= starts_at, column < ends_at)


def open_at(moment: Moment) -> ColumnElement[bool]:
    """The directive was launched by `moment` and had not ended by then."""
    return and_(Directive.launched_at <= moment, or_(Directive.ended_at.is_(None), Directive.ended_at > moment))


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


def scoped(query: _Query, season_id: int | None) -> _Query:
    return query if season_id is None else query.where(Directive.season_id == season_id)


def escalation_levels_at(moment: datetime) -> Subquery:
    """Per directive, the highest escalation level open at `moment`."""
    return (
        select(Escalation.directive_id.label("directive_id"), func.max(Escalation.level).label("level"))
        .where(Escalation.directive_id.is_not(None), Escalation.raised_at <= moment,
               or_(Escalation.resolved_at.is_(None), Escalation.resolved_at > moment))
        .group_by(Escalation.directive_id)
        .subquery("open_levels")
    )


def overdue_directives(session: Session, as_of: datetime, season_id: int | None, refs: dict[int, EntityRef],
                       limit: int | None = None) -> list[OverdueDirective]:
    """Directives open and past their deadline at `as_of`, longest overdue first."""
    levels = escalation_levels_at(as_of)
    query = scoped(
        select(Directive.reference, Directive.title, Directive.title_en, Directive.responsible_entity_id,
               Directive.priority, Directive.track, Directive.deadline_at, func.coalesce(levels.c.level, 0))
        .outerjoin(levels, levels.c.directive_id == Directive.id)
        .where(open_at(as_of), Directive.deadline_at < as_of)
        .order_by(Directive.deadline_at, Directive.reference),
        season_id,
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        OverdueDirective(reference, title, title_en, refs.get(entity_id) or unknown_entity(str(entity_id)),
                         priority, track, deadline, round((as_of - deadline).total_seconds() / 86400, 1), level)
        for reference, title, title_en, entity_id, priority, track, deadline, level in session.execute(query)
    ]


def _season_covering(session: Session, day: date) -> Season | None:
    return session.scalar(select(Season).where(Season.starts_on <= day, Season.ends_on >= day)
                          .order_by(Season.starts_on.desc()).limit(1))


def _day_counts(session: Session, period: ReportPeriod, season_id: int | None) -> dict[str, int]:
    s, e = period.starts_at, period.ends_at
    ended = within(Directive.ended_at, s, e)
    query = scoped(
        select(
            count_if(within(Directive.created_at, s, e)).label("received"),
            count_if(within(Directive.launched_at, s, e)).label("launched"),
            count_if(and_(ended, Directive.status == COMPLETED)).label("completed"),
            count_if(and_(ended, Directive.status == COMPLETED, Directive.completed_on_time.is_(True)))
            .label("on_time"),
            count_if(and_(ended, Directive.status == CANCELLED)).label("cancelled"),
        ).where(or_(within(Directive.created_at, s, e), within(Directive.launched_at, s, e), ended)),
        season_id,
    )
    return dict(session.execute(query).one()._mapping)


def _entity_rows(session: Session, period: ReportPeriod, season_id: int | None,
                 refs: dict[int, EntityRef]) -> list[EntityDayRow]:
    s, e, t = period.starts_at, period.ends_at, period.as_of
    is_open = open_at(t)
    done = and_(Directive.status == COMPLETED, within(Directive.ended_at, s, e))
    query = scoped(
        select(
            Directive.responsible_entity_id,
            count_if(is_open),
            count_if(and_(is_open, within(Directive.deadline_at, s, e))),
            count_if(and_(is_open, Directive.deadline_at < t)),
            count_if(done),
            count_if(and_(done, Directive.completed_on_time.is_(True))),
        )
        .where(or_(is_open, done))
        .group_by(Directive.responsible_entity_id),
        season_id,
    )
    rows = [EntityDayRow(refs.get(entity_id) or unknown_entity(str(entity_id)), *figures)
            for entity_id, *figures in session.execute(query)]
    return sorted(rows, key=lambda r: (-r.overdue, -r.open, -r.done, r.entity.code))


def _steps_due(session: Session, period: ReportPeriod, season_id: int | None) -> list[DueStep]:
    t = period.as_of
    by_code = entity_refs_by_code(session)
    query = scoped(
        select(Directive.reference, Directive.title, Directive.title_en, WorkItem.element_id, WorkItem.name_ar,
               WorkItem.name_en, WorkItem.name, WorkItem.assignee_entity, WorkItem.assignee_role, WorkItem.due_at)
        .join(Directive, Directive.instance_id == WorkItem.instance_id)
        .where(within(WorkItem.due_at, period.starts_at, period.ends_at), WorkItem.created_at <= t,
               or_(WorkItem.completed_at.is_(None), WorkItem.completed_at > t))
        .order_by(WorkItem.due_at, Directive.reference, WorkItem.id),
        season_id,
    )
    return [
        DueStep(reference, title, title_en, element, name_ar or name, name_en or name,
                (by_code.get(entity) or unknown_entity(entity)) if entity else None, role,
                present(due_at, "a step due within the day's due_at"))
        for reference, title, title_en, element, name_ar, name_en, name, entity, role, due_at in session.execute(query)
    ]


def _escalations(session: Session, period: ReportPeriod, season_id: int | None) -> list[EscalationLevelCount]:
    s, e = period.starts_at, period.ends_at
    raised, resolved = within(Escalation.raised_at, s, e), within(Escalation.resolved_at, s, e)
    query = scoped(
        select(Escalation.level, count_if(raised), count_if(resolved))
        .join(Directive, Directive.id == Escalation.directive_id)
        .where(or_(raised, resolved))
        .group_by(Escalation.level)
        .order_by(Escalation.level),
        season_id,
    )
    return [EscalationLevelCount(level, up, down) for level, up, down in session.execute(query)]
