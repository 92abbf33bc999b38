"""The dashboard's KPIs per entity and per track: open, overdue, on-time rate, mean time to acknowledge
and to complete, open escalations by level.

Active, completed and on-time counts, the hours and the open escalations come from the running totals kept
per season, entity and track (engine/directives/tallies.py): a few rows, where counting them read the whole season.
Overdue, which changes with the clock, is counted from the directives through an index that covers it.
Durations use the reports' definitions (engine/reports/periodic.py): time to acknowledge is an
`acknowledge` step's creation to its completion, time to complete a directive's launch to its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from engine.calendar import seasons
from engine.calendar.seasons import Season
from engine.directives import tallies
from engine.directives.directives import TRACKS, Directive, overdue_condition
from engine.foundation import clock
from engine.foundation.errors import N_, NotFound
from engine.people import entities
from engine.people.entities import Entity
from engine.reports.common import rate

LEVELS = tallies.ESCALATION_LEVELS  # escalation levels shown; higher ones count under the last


@dataclass(frozen=True)
class MeanHours:
    """How many durations and their sum in hours; the mean rounded to hundredths, None when there are none."""

    count: int = 0
    hours: float = 0.0

    @property
    def mean_hours(self) -> float | None:
        return round(self.hours / self.count, 2) if self.count else None

    def plus(self, count: int, hours: float) -> MeanHours:
        return MeanHours(self.count + count, self.hours + hours)


@dataclass
class Row:
    key: str
    name_ar: str
    name_en: str
    open: int = 0
    overdue: int = 0
    completed: int = 0
    on_time: int = 0
    acknowledge: MeanHours = field(default_factory=MeanHours)
    complete: MeanHours = field(default_factory=MeanHours)
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


@dataclass
class _Sums:
    """What the totals row adds up over every tally row."""

    acknowledge: MeanHours = field(default_factory=MeanHours)
    complete: MeanHours = field(default_factory=MeanHours)
    levels: dict[int, int] = field(default_factory=dict)


def _count_tallies(session: Session, season: Season | None, rows: _Rows) -> _Sums:
    """Active, completed and on-time counts, mean hours and open escalations by level from the running
    totals (engine/directives/tallies.py)."""
    sums = _Sums()
    for tally in tallies.of_season(session, season.id if season is not None else None):
        if not any(tally.figures().values()):
            continue  # all taken away again (a directive reassigned to another entity): as if never met
        escalations = tally.escalations()
        for row in (rows.entity(tally.entity), rows.track(tally.track)):
            row.add_counts(tally.active, 0, tally.completed, tally.on_time)
            row.acknowledge = row.acknowledge.plus(tally.acknowledged, tally.acknowledge_hours)
            row.complete = row.complete.plus(tally.completed, tally.completion_hours)
            for level, count in escalations.items():
                row.add_escalations(level, count)
        sums.acknowledge = sums.acknowledge.plus(tally.acknowledged, tally.acknowledge_hours)
        sums.complete = sums.complete.plus(tally.completed, tally.completion_hours)
        for level, count in escalations.items():
            sums.levels[level] = sums.levels.get(level, 0) + count
    return sums


def _count_overdue(session: Session, scope: Any, now: datetime, rows: _Rows) -> None:
    found = session.execute(
        select(Directive.responsible_entity_id, Directive.track, func.count())
        .where(scope, overdue_condition(now)).group_by(Directive.responsible_entity_id, Directive.track)).all()
    for entity_id, track, overdue in found:
        for row in (rows.entity(rows.code_of(entity_id)), rows.track(track)):
            row.add_counts(0, overdue, 0, 0)


def _totals(ordered: list[Row], sums: _Sums) -> Row:
    totals = Row("all", "", "")
    for row in ordered:
        totals.add_counts(row.open, row.overdue, row.completed, row.on_time)
    totals.acknowledge, totals.complete, totals.levels = sums.acknowledge, sums.complete, sums.levels
    return totals


def kpis(session: Session, season: Season | None) -> Kpis:
    """The dashboard's figures over `season`'s directives (every directive when None), as of now."""
    now = clock.now()
    rows = _Rows({e.id: e for e in entities.list_entities(session)})
    sums = _count_tallies(session, season, rows)
    scope = (Directive.season_id == season.id) if season is not None else true()
    _count_overdue(session, scope, now, rows)
    ordered = sorted(rows.entities.values(), key=lambda r: (-r.overdue, -r.open, r.key))
    return Kpis(entities=ordered, tracks=[rows.tracks[t] for t in TRACKS if t in rows.tracks],
                totals=_totals(ordered, sums), levels=LEVELS, scale=max([r.open for r in ordered] + [1]), now=now)


def season_choice(session: Session, hijri_year: int | None) -> tuple[list[Season], Season | None]:
    """Every season (latest first) and the one to show: the year asked for (NotFound if there is no such
    season), else the season of today, else the latest; None when there is no season at all."""
    all_seasons = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
    if hijri_year is not None:
        chosen = next((s for s in all_seasons if s.hijri_year == hijri_year), None)
        if chosen is None:
            raise NotFound(N_("no season %(season)s"), params={"season": str(hijri_year)})
        return all_seasons, chosen
    if not all_seasons:
        return all_seasons, None
    try:
        return all_seasons, seasons.season_for(session, clock.now())
    except NotFound:
        return all_seasons, all_seasons[0]
