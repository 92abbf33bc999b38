"""The periodic report (التقرير الدوري): a range of local days (a week by default) as trends per day,
per entity and per track; how long entities take to acknowledge and directives to complete (mean and
90th percentile); and the longest-overdue directives at the end of the period.

The per-day figures come from one query joining directives to a small table of the period's days
(GROUP BY day, entity, track) and one for escalations; durations come from one query each, whose
column values are reduced in Python (the same percentile on SQLite and PostgreSQL).

- time to acknowledge: an `acknowledge` step completed in the period, from its creation to its completion;
- time to complete: a directive completed in the period, from its launch to its end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from engine.calendar.durations import hours_between
from engine.calendar.seasons import Season
from engine.directives.directives import CANCELLED, COMPLETED, TRACKS, Directive
from engine.foundation import clock
from engine.foundation.checks import present
from engine.people.entities import EntityRef, entity_refs, entity_refs_by_code, unknown_entity
from engine.reports.common import (
    PERIODIC,
    DataSource,
    DurationStats,
    HijriDate,
    ReportPeriod,
    SeasonRef,
    data_source,
    day_windows,
    make_period,
    rate,
)
from engine.reports.daily import OverdueDirective, count_if, open_at, overdue_directives, scoped, within
from engine.reports.settings import get_report_settings
from engine.work.escalations import Escalation
from engine.work.work_items import COMPLETED as STEP_COMPLETED
from engine.work.work_items import WorkItem

ACKNOWLEDGE_STEP = "acknowledge"
MEASURES = ("received", "launched", "completed", "completed_on_time", "cancelled", "escalations_raised", "overdue")


@dataclass(frozen=True)
class DayPoint:
    day: date
    hijri: HijriDate
    received: int
    launched: int
    completed: int
    completed_on_time: int
    cancelled: int
    escalations_raised: int
    overdue: int  # open and past deadline at the end of the day


@dataclass(frozen=True)
class TrendRow:
    """One entity or track over the period: totals, and per-day series (one value per day)."""

    key: str
    entity: EntityRef | None  # for rows per entity
    received: int
    launched: int
    completed: int
    completed_on_time: int
    cancelled: int
    escalations_raised: int
    overdue_at_end: int
    completed_by_day: list[int]
    overdue_by_day: list[int]

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.completed_on_time, self.completed)


@dataclass(frozen=True)
class DurationRow:
    key: str
    entity: EntityRef | None
    acknowledge: DurationStats
    complete: DurationStats


@dataclass(frozen=True)
class PeriodicReport:
    kind: str
    period: ReportPeriod
    generated_at: datetime
    source: DataSource
    season: SeasonRef | None
    days: list[DayPoint]
    entities: list[TrendRow]
    tracks: list[TrendRow]
    acknowledge: DurationStats
    complete: DurationStats
    durations_by_entity: list[DurationRow]
    durations_by_track: list[DurationRow]
    overdue_at_end: int
    longest_overdue: list[OverdueDirective]

    @property
    def totals(self) -> dict[str, int]:
        sums = {m: sum(getattr(d, m) for d in self.days) for m in MEASURES if m != "overdue"}
        sums["overdue_at_end"] = self.overdue_at_end
        return sums

    @property
    def on_time_rate(self) -> float | None:
        return rate(sum(d.completed_on_time for d in self.days), sum(d.completed for d in self.days))


def periodic(session: Session, start: date, end: date, season: Season | None = None) -> PeriodicReport:
    """The periodic report of local days `start`..`end` (both included)."""
    settings = get_report_settings()
    now = clock.now()
    period = make_period(start, end, settings.zone, now)
    season_id = season.id if season is not None else None
    source = data_source(session)
    refs = entity_refs(session)

    cells = _day_cells(session, period, season_id)
    n = len(period.days)
    days = []
    for index, day in enumerate(period.days):
        sums = _sum(v for (i, _, _), v in cells.items() if i == index)
        days.append(DayPoint(day, HijriDate.of(day), *(sums[m] for m in MEASURES)))
    entity_rows = _trends(cells, n, lambda key: key[1], lambda k: refs.get(k) or unknown_entity(str(k)))
    track_rows = _trends(cells, n, lambda key: key[2], lambda k: None)
    track_rows = sorted(track_rows, key=lambda r: TRACKS.index(r.key) if r.key in TRACKS else len(TRACKS))

    ack, done = _durations(session, period, season_id)
    by_code = entity_refs_by_code(session)
    entity_keys = sorted({code for code, _, _ in ack} | {refs[i].code if i in refs else str(i) for i, _, _ in done})
    durations_by_entity = [
        DurationRow(code, by_code.get(code) or unknown_entity(code),
                    DurationStats.of([h for c, _, h in ack if c == code]),
                    DurationStats.of([h for i, _, h in done if (refs[i].code if i in refs else str(i)) == code]))
        for code in entity_keys
    ]
    durations_by_track = [
        DurationRow(track, None, DurationStats.of([h for _, t, h in ack if t == track]),
                    DurationStats.of([h for _, t, h in done if t == track]))
        for track in TRACKS if any(t == track for _, t, _ in ack) or any(t == track for _, t, _ in done)
    ]
    longest = overdue_directives(session, period.as_of, season_id, refs, limit=settings.longest_overdue)
    return PeriodicReport(
        kind=PERIODIC, period=period, generated_at=now, source=source,
        season=SeasonRef.of(season) if season is not None else None, days=days,
        entities=sorted(entity_rows, key=lambda r: (-r.overdue_at_end, -r.completed, r.key)), tracks=track_rows,
        acknowledge=DurationStats.of([h for _, _, h in ack]), complete=DurationStats.of([h for _, _, h in done]),
        durations_by_entity=durations_by_entity, durations_by_track=durations_by_track,
        overdue_at_end=days[-1].overdue if days else 0, longest_overdue=longest,
    )


CellKey = tuple[int, int, str]  # (day index, entity id, track)
Cells = dict[CellKey, dict[str, int]]
_Group = TypeVar("_Group", int, str)  # what `_trends` groups the cells by: an entity id or a track


def _day_cells(session: Session, period: ReportPeriod, season_id: int | None) -> Cells:
    """Figures per (day index, entity id, track): two grouped queries."""
    days = day_windows(period, get_report_settings().zone)
    s, e, t = days.c.starts_at, days.c.ends_at, days.c.as_of
    ended = within(Directive.ended_at, s, e)
    received, launched = within(Directive.created_at, s, e), within(Directive.launched_at, s, e)
    overdue = and_(open_at(t), Directive.deadline_at < t)
    query = scoped(
        select(
            days.c.idx, Directive.responsible_entity_id, Directive.track,
            count_if(received), count_if(launched),
            count_if(and_(ended, Directive.status == COMPLETED)),
            count_if(and_(ended, Directive.status == COMPLETED, Directive.completed_on_time.is_(True))),
            count_if(and_(ended, Directive.status == CANCELLED)),
            count_if(overdue),
        )
        .join(days, or_(received, launched, ended, overdue))
        .group_by(days.c.idx, Directive.responsible_entity_id, Directive.track),
        season_id,
    )
    cells: Cells = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for idx, entity_id, track, rec, lau, com, ont, can, ovd in session.execute(query):
        cells[(idx, entity_id, track)].update(received=rec, launched=lau, completed=com, completed_on_time=ont,
                                              cancelled=can, overdue=ovd)
    escalations = scoped(
        select(days.c.idx, Directive.responsible_entity_id, Directive.track, count_if(Escalation.id.is_not(None)))
        .select_from(Escalation)
        .join(Directive, Directive.id == Escalation.directive_id)
        .join(days, within(Escalation.raised_at, s, e))
        .group_by(days.c.idx, Directive.responsible_entity_id, Directive.track),
        season_id,
    )
    for idx, entity_id, track, raised in session.execute(escalations):
        cells[(idx, entity_id, track)]["escalations_raised"] = raised
    return dict(cells)


def _sum(values: Iterable[Mapping[str, int]]) -> dict[str, int]:
    sums = dict.fromkeys(MEASURES, 0)
    for value in values:
        for measure in MEASURES:
            sums[measure] += value[measure]
    return sums


def _trends(cells: Cells, n: int, key_of: Callable[[CellKey], _Group],
            entity_of: Callable[[_Group], EntityRef | None]) -> list[TrendRow]:
    grouped: dict[_Group, dict[int, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(MEASURES, 0)))
    for key, values in cells.items():
        day = grouped[key_of(key)][key[0]]
        for measure in MEASURES:
            day[measure] += values[measure]
    rows = []
    for group, per_day in grouped.items():
        totals = _sum(per_day.values())
        series = [per_day.get(i, dict.fromkeys(MEASURES, 0)) for i in range(n)]
        entity = entity_of(group)
        rows.append(TrendRow(
            key=entity.code if entity is not None else str(group), entity=entity,
            received=totals["received"], launched=totals["launched"], completed=totals["completed"],
            completed_on_time=totals["completed_on_time"], cancelled=totals["cancelled"],
            escalations_raised=totals["escalations_raised"], overdue_at_end=series[-1]["overdue"],
            completed_by_day=[d["completed"] for d in series], overdue_by_day=[d["overdue"] for d in series],
        ))
    return rows


def _durations(session: Session, period: ReportPeriod, season_id: int | None
               ) -> tuple[list[tuple[str, str, float]], list[tuple[int, str, float]]]:
    """(entity code, track, hours) per acknowledged step and (entity id, track, hours) per completed directive."""
    s, e = period.starts_at, period.ends_at
    ack_query = scoped(
        select(WorkItem.assignee_entity, Directive.track, WorkItem.created_at, WorkItem.completed_at)
        .join(Directive, Directive.instance_id == WorkItem.instance_id)
        .where(WorkItem.element_id == ACKNOWLEDGE_STEP, WorkItem.status == STEP_COMPLETED,
               within(WorkItem.completed_at, s, e)),
        season_id,
    )
    ack = [(entity or "-", track, hours_between(created, present(completed, "a completed step's completed_at")))
           for entity, track, created, completed in session.execute(ack_query)]
    done_query = scoped(
        select(Directive.responsible_entity_id, Directive.track, Directive.launched_at, Directive.ended_at)
        .where(Directive.status == COMPLETED, Directive.launched_at.is_not(None), within(Directive.ended_at, s, e)),
        season_id,
    )
    done = [(entity_id, track, hours_between(present(launched, "a completed directive's launched_at"),
                                             present(ended, "a completed directive's ended_at")))
            for entity_id, track, launched, ended in session.execute(done_query)]
    return ack, done
