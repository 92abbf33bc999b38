"""The seasonal report (التقرير الموسمي): one season's directives as of now — totals and rates per
entity, track, kind and programme track; the distribution of completion times; escalations by
level; recurring obstacles (tags found on directives or pilgrim feedback of this season and of the
previous one, computed by `engine.insight.obstacles`); the bottleneck steps of each model version used in the
season (`engine.reports.insight`, from the kept step figures); and the previous season's figures side by
side.

Counts come from one query grouped by (entity, track, kind, programme track) and rolled up in
Python; completion times from one query of launch and end moments; escalations from one grouped
query; tags from two (directives, feedback).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from engine.calendar.durations import hours_between
from engine.calendar.seasons import Season
from engine.directives.directives import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    DRAFT,
    KINDS,
    PROGRAMME_TRACKS,
    TRACKS,
    Directive,
)
from engine.foundation import clock
from engine.foundation.checks import present
from engine.insight.obstacles import Obstacle
from engine.insight.obstacles import recurring as recurring_obstacles
from engine.people.entities import EntityRef, entity_refs, unknown_entity
from engine.reports import feedback, insight
from engine.reports.common import (
    SEASONAL,
    DataSource,
    DurationStats,
    HijriDate,
    ReportPeriod,
    SeasonRef,
    data_source,
    local_midnight,
    rate,
)
from engine.reports.daily import count_if, open_at
from engine.reports.feedback import FeedbackSummary
from engine.reports.settings import get_report_settings
from engine.work.escalations import Escalation

# Completion-time buckets, in hours: [lower, upper); None is open-ended.
BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("le_6h", 0, 6), ("6_24h", 6, 24), ("1_3d", 24, 72), ("3_7d", 72, 168), ("gt_7d", 168, None),
)
FIGURES = ("total", "draft", "active", "completed", "completed_on_time", "cancelled", "overdue", "escalated",
           "extended")


@dataclass(frozen=True)
class GroupFigures:
    """Directives of one group (an entity, a track, a kind, a programme track, or all) as of the report."""

    key: str
    entity: EntityRef | None
    total: int
    draft: int
    active: int
    completed: int
    completed_on_time: int
    cancelled: int
    overdue: int  # active and past deadline
    escalated: int  # with at least one escalation
    extended: int  # with at least one extension
    completion: DurationStats  # launch to end of completed directives

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.completed_on_time, self.completed)

    @property
    def completion_rate(self) -> float | None:
        return rate(self.completed, self.total - self.draft - self.cancelled)

    @property
    def escalation_rate(self) -> float | None:
        return rate(self.escalated, self.total - self.draft)


@dataclass(frozen=True)
class Bucket:
    key: str
    lower_hours: float
    upper_hours: float | None
    count: int


@dataclass(frozen=True)
class LevelFigures:
    level: int
    raised: int
    resolved: int
    open: int


@dataclass(frozen=True)
class SeasonFigures:
    season: SeasonRef
    totals: GroupFigures
    by_entity: list[GroupFigures]
    by_track: list[GroupFigures]
    by_kind: list[GroupFigures]
    by_programme_track: list[GroupFigures]
    completion_buckets: list[Bucket]
    escalations_by_level: list[LevelFigures]


@dataclass(frozen=True)
class SeasonalReport:
    kind: str
    period: ReportPeriod
    generated_at: datetime
    source: DataSource
    season: SeasonRef
    current: SeasonFigures
    previous: SeasonFigures | None
    obstacles: list[Obstacle]
    feedback: FeedbackSummary | None  # HOOK (issue 9): None until a feedback source is registered
    bottlenecks: list[insight.ModelBottlenecks] = field(default_factory=list)  # per model version used


def seasonal(session: Session, season: Season, previous_season: Season | None = None) -> SeasonalReport:
    """The seasonal report; without `previous_season`, the latest season before this one (if any)."""
    settings = get_report_settings()
    now = clock.now()
    if previous_season is None:
        previous_season = session.scalar(select(Season).where(Season.hijri_year < season.hijri_year)
                                         .order_by(Season.hijri_year.desc()).limit(1))
    zone = settings.zone
    period = ReportPeriod(season.starts_on, season.ends_on, local_midnight(season.starts_on, zone),
                          local_midnight(season.ends_on + timedelta(days=1), zone), now, zone.key,
                          HijriDate.of(season.starts_on), HijriDate.of(season.ends_on))
    source = data_source(session)
    refs = entity_refs(session)
    current = season_figures(session, season, now, refs)
    previous = season_figures(session, previous_season, now, refs) if previous_season is not None else None
    return SeasonalReport(
        kind=SEASONAL, period=period, generated_at=now, source=source, season=SeasonRef.of(season),
        current=current, previous=previous,
        obstacles=_obstacles(session, season, previous_season, refs) if previous_season is not None else [],
        feedback=feedback.collect(session, period.starts_at, period.ends_at),
        bottlenecks=insight.season_bottlenecks(session, season.id),
    )


def _entity_of(refs: dict[int, EntityRef], entity_id: object) -> EntityRef:
    known = refs.get(entity_id) if isinstance(entity_id, int) else None
    return known or unknown_entity(str(entity_id))


def season_figures(session: Session, season: Season, as_of: datetime, refs: dict[int, EntityRef]) -> SeasonFigures:
    escalated_ids = select(Escalation.directive_id).where(Escalation.directive_id.is_not(None)).distinct().subquery()
    status = Directive.status
    query = (
        select(
            Directive.responsible_entity_id, Directive.track, Directive.kind, Directive.programme_track,
            func.count(),
            count_if(status == DRAFT),
            count_if(status == ACTIVE),
            count_if(status == COMPLETED),
            count_if(and_(status == COMPLETED, Directive.completed_on_time.is_(True))),
            count_if(status == CANCELLED),
            count_if(and_(open_at(as_of), Directive.deadline_at < as_of)),
            count_if(escalated_ids.c.directive_id.is_not(None)),
            count_if(Directive.extension_count > 0),
        )
        .outerjoin(escalated_ids, escalated_ids.c.directive_id == Directive.id)
        .where(Directive.season_id == season.id)
        .group_by(Directive.responsible_entity_id, Directive.track, Directive.kind, Directive.programme_track)
    )
    cells = [(tuple(row[:4]), dict(zip(FIGURES, row[4:], strict=True))) for row in session.execute(query)]
    durations = [
        (entity_id, track, kind, programme,
         hours_between(present(launched, "a completed directive's launched_at"),
                       present(ended, "a completed directive's ended_at")))
        for entity_id, track, kind, programme, launched, ended in session.execute(
            select(Directive.responsible_entity_id, Directive.track, Directive.kind, Directive.programme_track,
                   Directive.launched_at, Directive.ended_at)
            .where(Directive.season_id == season.id, Directive.status == COMPLETED,
                   Directive.launched_at.is_not(None), Directive.ended_at.is_not(None))
        )
    ]

    def rollup(position: int | None, order: tuple[str, ...] | None = None) -> list[GroupFigures]:
        sums: dict[object, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
        hours: dict[object, list[float]] = defaultdict(list)
        for key, figures in cells:
            group = sums[key[position] if position is not None else "all"]
            for name in FIGURES:
                group[name] += figures[name]
        for *dims, spent in durations:
            hours[dims[position] if position is not None else "all"].append(spent)
        rows = []
        for group_key, figures in sums.items():
            entity = _entity_of(refs, group_key) if position == 0 else None
            rows.append(GroupFigures(entity.code if entity else str(group_key), entity, **figures,
                                     completion=DurationStats.of(hours.get(group_key, []))))
        if order is not None:
            return sorted(rows, key=lambda r: order.index(r.key) if r.key in order else len(order))
        return sorted(rows, key=lambda r: (-r.total, r.key))

    totals = rollup(None)
    all_hours = [spent for *_, spent in durations]
    return SeasonFigures(
        season=SeasonRef.of(season),
        totals=totals[0] if totals else GroupFigures("all", None, **dict.fromkeys(FIGURES, 0),
                                                           completion=DurationStats.of([])),
        by_entity=rollup(0), by_track=rollup(1, TRACKS), by_kind=rollup(2, KINDS),
        by_programme_track=rollup(3, PROGRAMME_TRACKS),
        completion_buckets=[
            Bucket(key, lower, upper, sum(1 for h in all_hours if h >= lower and (upper is None or h < upper)))
            for key, lower, upper in BUCKETS
        ],
        escalations_by_level=[
            LevelFigures(level, raised, resolved, still_open)
            for level, raised, resolved, still_open in session.execute(
                select(Escalation.level, func.count(), count_if(Escalation.status == "resolved"),
                       count_if(Escalation.status == "open"))
                .join(Directive, Directive.id == Escalation.directive_id)
                .where(Directive.season_id == season.id)
                .group_by(Escalation.level).order_by(Escalation.level)
            )
        ],
    )


def _obstacles(session: Session, season: Season, previous: Season, refs: dict[int, EntityRef]) -> list[Obstacle]:
    """Recurring obstacles come from `engine.insight.obstacles` (directive and pilgrim-feedback tags), as on its
    page."""
    return recurring_obstacles(session, season, previous, refs)
