"""The dashboard's KPIs per entity and per track: open, overdue, on-time rate, mean time to acknowledge
and to complete, open escalations by level.

Every figure comes from a few grouped queries over the indexed projection columns (no workflow state is
loaded); durations use the reports' definitions (engine/reports/periodic.py): time to acknowledge is an
`acknowledge` step's creation to its completion, time to complete a directive's launch to its end.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.orm import Session

from engine import clock, entities, seasons
from engine.directives import ACTIVE, COMPLETED, TRACKS, Directive, overdue_condition
from engine.entities import Entity
from engine.errors import NotFound
from engine.escalations import Escalation
from engine.reports.common import DurationStats, hours_between, rate
from engine.seasons import Season
from engine.work_items import COMPLETED as STEP_DONE
from engine.work_items import WorkItem

LEVELS = (1, 2, 3)  # escalation levels shown; higher ones count under the last
Hours = dict[tuple[str, str], list[float]]  # ("entity", code) or ("track", track) -> durations in hours


@dataclass
class Row:
    key: str
    name_ar: str
    name_en: str
    open: int = 0
    overdue: int = 0
    completed: int = 0
    on_time: int = 0
    acknowledge: DurationStats = field(default_factory=lambda: DurationStats(0, None, None))
    complete: DurationStats = field(default_factory=lambda: DurationStats(0, None, None))
    levels: dict[int, int] = field(default_factory=dict)

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.on_time, self.completed)

    @property
    def escalations(self) -> int:
        return sum(self.levels.values())

    def add_counts(self, open_: int, overdue: int, completed: int, on_time: int) -> None:
        self.open += open_
        self.overdue += overdue
        self.completed += completed
        self.on_time += on_time

    def add_escalations(self, level: int, count: int) -> None:
        self.levels[level] = self.levels.get(level, 0) + count


@dataclass
class Kpis:
    entities: list[Row]  # most overdue first, then most open, then by code
    tracks: list[Row]  # in the order of `TRACKS`
    totals: Row
    levels: tuple[int, ...]
    scale: int  # the largest open count (at least 1), for bar widths
    now: datetime


class _Rows:
    """The rows being filled: one per entity (made when first met) and one per track."""

    def __init__(self, refs: dict[int, Entity]) -> None:
        self.refs = refs
        self.by_code = {e.code: e for e in refs.values()}
        self.entities: dict[str, Row] = {}
        self.tracks: dict[str, Row] = {t: Row(t, t, t) for t in TRACKS}

    def code_of(self, entity_id: int) -> str:
        return self.refs[entity_id].code if entity_id in self.refs else str(entity_id)

    def entity(self, code: str) -> Row:
        if code not in self.entities:
            ref = self.by_code.get(code)
            self.entities[code] = Row(code, ref.name_ar if ref else code, ref.name_en if ref else code)
        return self.entities[code]

    def track(self, track: str) -> Row:
        return self.tracks.setdefault(track, Row(track, track, track))

    def of(self, kind: str, key: str) -> Row:
        return self.entity(key) if kind == "entity" else self.track(key)


def _level(level: int) -> int:
    return min(level, LEVELS[-1])


def _count_directives(session: Session, scope: Any, now: datetime, rows: _Rows) -> None:
    counts = session.execute(
        select(Directive.responsible_entity_id, Directive.track,
               func.sum(case((Directive.status == ACTIVE, 1), else_=0)),
               func.sum(case((overdue_condition(now), 1), else_=0)),
               func.sum(case((Directive.status == COMPLETED, 1), else_=0)),
               func.sum(case((and_(Directive.status == COMPLETED, Directive.completed_on_time.is_(True)), 1),
                             else_=0)))
        .where(scope).group_by(Directive.responsible_entity_id, Directive.track)).all()
    for entity_id, track, open_, overdue, done, on_time in counts:
        for row in (rows.entity(rows.code_of(entity_id)), rows.track(track)):
            row.add_counts(open_ or 0, overdue or 0, done or 0, on_time or 0)


def _acknowledge_hours(session: Session, scope: Any) -> Hours:
    found = session.execute(
        select(WorkItem.assignee_entity, Directive.track, WorkItem.created_at, WorkItem.completed_at)
        .join(Directive, Directive.instance_id == WorkItem.instance_id)
        .where(scope, WorkItem.element_id == "acknowledge", WorkItem.status == STEP_DONE)).all()
    hours: Hours = defaultdict(list)
    for code, track, created, completed in found:
        hours[("entity", code or "-")].append(hours_between(created, completed))
        hours[("track", track)].append(hours_between(created, completed))
    return hours


def _completion_hours(session: Session, scope: Any, rows: _Rows) -> Hours:
    found = session.execute(
        select(Directive.responsible_entity_id, Directive.track, Directive.launched_at, Directive.ended_at)
        .where(scope, Directive.status == COMPLETED, Directive.launched_at.is_not(None),
               Directive.ended_at.is_not(None))).all()
    hours: Hours = defaultdict(list)
    for entity_id, track, launched, ended in found:
        hours[("entity", rows.code_of(entity_id))].append(hours_between(launched, ended))
        hours[("track", track)].append(hours_between(launched, ended))
    return hours


def _count_escalations(session: Session, scope: Any, rows: _Rows) -> dict[int, int]:
    """Open escalations per row and level; returns the totals by level."""
    found = session.execute(
        select(Escalation.entity, Directive.track, Escalation.level, func.count())
        .join(Directive, Directive.id == Escalation.directive_id)
        .where(scope, Escalation.status == "open")
        .group_by(Escalation.entity, Directive.track, Escalation.level)).all()
    totals: dict[int, int] = defaultdict(int)
    for code, track, level, count in found:
        rows.entity(code or "-").add_escalations(_level(level), count)
        rows.track(track).add_escalations(_level(level), count)
        totals[_level(level)] += count
    return dict(totals)


def _all_hours(hours: Hours) -> list[float]:
    return [h for (kind, _), values in hours.items() if kind == "track" for h in values]


def _totals(ordered: list[Row], acknowledge: Hours, complete: Hours, levels: dict[int, int]) -> Row:
    totals = Row("all", "", "")
    for row in ordered:
        totals.add_counts(row.open, row.overdue, row.completed, row.on_time)
    totals.acknowledge = DurationStats.of(_all_hours(acknowledge))
    totals.complete = DurationStats.of(_all_hours(complete))
    totals.levels = levels
    return totals


def kpis(session: Session, season: Season | None) -> Kpis:
    """The dashboard's figures over `season`'s directives (every directive when None), as of now."""
    now = clock.now()
    scope = (Directive.season_id == season.id) if season is not None else true()
    rows = _Rows({e.id: e for e in entities.list_entities(session)})
    _count_directives(session, scope, now, rows)
    acknowledge = _acknowledge_hours(session, scope)
    complete = _completion_hours(session, scope, rows)
    levels = _count_escalations(session, scope, rows)
    for (kind, key), hours in acknowledge.items():
        rows.of(kind, key).acknowledge = DurationStats.of(hours)
    for (kind, key), hours in complete.items():
        rows.of(kind, key).complete = DurationStats.of(hours)
    ordered = sorted(rows.entities.values(), key=lambda r: (-r.overdue, -r.open, r.key))
    return Kpis(entities=ordered, tracks=[rows.tracks[t] for t in TRACKS if t in rows.tracks],
                totals=_totals(ordered, acknowledge, complete, levels), levels=LEVELS,
                scale=max([r.open for r in ordered] + [1]), now=now)


def season_choice(session: Session, hijri_year: int | None) -> tuple[list[Season], Season | None]:
    """Every season (latest first) and the one to show: the year asked for (NotFound if there is no such
    season), else the season of today, else the latest; None when there is no season at all."""
    all_seasons = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
    if hijri_year is not None:
        chosen = next((s for s in all_seasons if s.hijri_year == hijri_year), None)
        if chosen is None:
            raise NotFound(f"no season {hijri_year}")
        return all_seasons, chosen
    if not all_seasons:
        return all_seasons, None
    try:
        return all_seasons, seasons.season_for(session, clock.now())
    except NotFound:
        return all_seasons, all_seasons[0]
