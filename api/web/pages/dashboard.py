"""The dashboard: KPIs per entity and per track (open, overdue, on-time rate, mean time to acknowledge and
to complete, escalations by level), with bar charts drawn as SVG shapes and labelled in HTML.

Every figure comes from a few grouped queries over the indexed projection columns (no workflow state is
loaded); durations use the reports' definitions (engine/reports/periodic.py): time to acknowledge is an
`acknowledge` step's creation to its completion, time to complete a directive's launch to its end.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import and_, case, func, select

from api.web.core import WebRoute, render
from api.web.session import require_user
from engine import access, clock, entities, seasons
from engine.directives import ACTIVE, COMPLETED, TRACKS, Directive
from engine.errors import NotFound
from engine.escalations import Escalation
from engine.reports.common import DurationStats, hours_between, rate
from engine.seasons import Season
from engine.work_items import COMPLETED as STEP_DONE
from engine.work_items import WorkItem

router = APIRouter(route_class=WebRoute)
LEVELS = (1, 2, 3)


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


def _level(level: int) -> int:
    return min(level, LEVELS[-1])


def kpis(session, season: Season | None) -> dict[str, Any]:
    now = clock.now()
    scope = (Directive.season_id == season.id) if season is not None else True
    refs = {e.id: e for e in entities.list_entities(session)}
    by_code = {e.code: e for e in refs.values()}
    entity_rows: dict[str, Row] = {}
    track_rows: dict[str, Row] = {t: Row(t, t, t) for t in TRACKS}

    def entity_row(code: str) -> Row:
        if code not in entity_rows:
            ref = by_code.get(code)
            entity_rows[code] = Row(code, ref.name_ar if ref else code, ref.name_en if ref else code)
        return entity_rows[code]

    counts = session.execute(
        select(Directive.responsible_entity_id, Directive.track,
               func.sum(case((Directive.status == ACTIVE, 1), else_=0)),
               func.sum(case((and_(Directive.status == ACTIVE, Directive.current_due_at < now), 1), else_=0)),
               func.sum(case((Directive.status == COMPLETED, 1), else_=0)),
               func.sum(case((and_(Directive.status == COMPLETED, Directive.completed_on_time.is_(True)), 1),
                             else_=0)))
        .where(scope).group_by(Directive.responsible_entity_id, Directive.track)).all()
    for entity_id, track, open_, overdue, done, on_time in counts:
        code = refs[entity_id].code if entity_id in refs else str(entity_id)
        for row in (entity_row(code), track_rows.setdefault(track, Row(track, track, track))):
            row.open += open_ or 0
            row.overdue += overdue or 0
            row.completed += done or 0
            row.on_time += on_time or 0

    ack = session.execute(
        select(WorkItem.assignee_entity, Directive.track, WorkItem.created_at, WorkItem.completed_at)
        .join(Directive, Directive.instance_id == WorkItem.instance_id)
        .where(scope, WorkItem.element_id == "acknowledge", WorkItem.status == STEP_DONE)).all()
    done = session.execute(
        select(Directive.responsible_entity_id, Directive.track, Directive.launched_at, Directive.ended_at)
        .where(scope, Directive.status == COMPLETED, Directive.launched_at.is_not(None),
               Directive.ended_at.is_not(None))).all()
    ack_by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for code, track, created, completed in ack:
        hours = hours_between(created, completed)
        ack_by[("entity", code or "-")].append(hours)
        ack_by[("track", track)].append(hours)
    done_by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for entity_id, track, launched, ended in done:
        hours = hours_between(launched, ended)
        done_by[("entity", refs[entity_id].code if entity_id in refs else str(entity_id))].append(hours)
        done_by[("track", track)].append(hours)

    levels = session.execute(
        select(Escalation.entity, Directive.track, Escalation.level, func.count())
        .join(Directive, Directive.id == Escalation.directive_id)
        .where(scope, Escalation.status == "open")
        .group_by(Escalation.entity, Directive.track, Escalation.level)).all()
    totals_by_level: dict[int, int] = defaultdict(int)
    for code, track, level, count in levels:
        entity_row(code or "-").levels[_level(level)] = entity_row(code or "-").levels.get(_level(level), 0) + count
        row = track_rows.setdefault(track, Row(track, track, track))
        row.levels[_level(level)] = row.levels.get(_level(level), 0) + count
        totals_by_level[_level(level)] += count

    for (kind, key), hours in ack_by.items():
        target = entity_row(key) if kind == "entity" else track_rows.setdefault(key, Row(key, key, key))
        target.acknowledge = DurationStats.of(hours)
    for (kind, key), hours in done_by.items():
        target = entity_row(key) if kind == "entity" else track_rows.setdefault(key, Row(key, key, key))
        target.complete = DurationStats.of(hours)

    ordered = sorted(entity_rows.values(), key=lambda r: (-r.overdue, -r.open, r.key))
    totals = Row("all", "", "")
    for row in ordered:
        totals.open += row.open
        totals.overdue += row.overdue
        totals.completed += row.completed
        totals.on_time += row.on_time
    totals.acknowledge = DurationStats.of([h for (k, _), hs in ack_by.items() if k == "track" for h in hs])
    totals.complete = DurationStats.of([h for (k, _), hs in done_by.items() if k == "track" for h in hs])
    totals.levels = dict(totals_by_level)
    biggest = max([r.open for r in ordered] + [1])
    return {"entities": ordered, "tracks": [track_rows[t] for t in TRACKS if t in track_rows],
            "totals": totals, "levels": LEVELS, "scale": biggest, "now": now}


@router.get("/dashboard")
def dashboard(request: Request, season: int | None = None) -> Response:
    user = require_user(request)
    access.require(user, "report.read")
    with request.app.state.tansiq.db.reading() as session:
        all_seasons = list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
        chosen = None
        if season is not None:
            chosen = next((s for s in all_seasons if s.hijri_year == season), None)
            if chosen is None:
                raise NotFound(f"no season {season}")
        elif all_seasons:
            try:
                chosen = seasons.season_for(session, clock.now())
            except NotFound:
                chosen = all_seasons[0]
        context = kpis(session, chosen)
    context.update({"seasons": all_seasons, "season": chosen})
    return render(request, "dashboard.html", context)
