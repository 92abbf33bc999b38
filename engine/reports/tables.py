"""Every report as a list of plain tables, in one language: the sheets of the XLSX, the sections of the
CSV, and the tables of the HTML/PDF.

Cells keep their type so each renderer can show them properly: `int`, `float`, `Pct` (a fraction),
`Hours`, `Days`, `datetime` (shown in local time), `date`, `str` or None (no value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from engine.reports.common import DurationStats
from engine.reports.daily import DailyReport, OverdueDirective
from engine.reports.insight import EscalationForecast
from engine.reports.labels import Formatter
from engine.reports.periodic import DurationRow, PeriodicReport, TrendRow
from engine.reports.seasonal import GroupFigures, SeasonalReport


class Pct(float):
    """A fraction shown as a percentage."""


class Hours(float):
    """A duration in hours."""


class Days(float):
    """A duration in days."""


class Expected(float):
    """An expected count (a sum of probabilities), shown with two decimals so that the parts add up."""


Cell = int | float | Pct | Hours | Days | Expected | datetime | date | str | None


def pct(value: float | None) -> Pct | None:
    return None if value is None else Pct(value)


def hours(value: float | None) -> Hours | None:
    return None if value is None else Hours(value)


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str | None = None
    total_row: bool = False  # the last row is a total (bold in documents)

    def grouped(self) -> list[tuple[Cell, Table]]:
        """The rows split by their first cell, in order of appearance, each part without that column: one
        table per model version in the HTML/PDF, while the XLSX and CSV keep a single table."""
        parts: dict[Cell, Table] = {}
        for row in self.rows:
            part = parts.setdefault(row[0], Table(self.key, self.title, self.columns[1:]))
            part.rows.append(row[1:])
        return list(parts.items())


def tables(report: Any, f: Formatter) -> list[Table]:
    if isinstance(report, DailyReport):
        return daily_tables(report, f)
    if isinstance(report, PeriodicReport):
        return periodic_tables(report, f)
    if isinstance(report, SeasonalReport):
        return seasonal_tables(report, f)
    raise TypeError(f"not a report: {type(report).__name__}")


def _columns(f: Formatter, *spec: str) -> list[Column]:
    """Column keys; a leading '#' marks a numeric column."""
    return [Column(key.lstrip("#"), f.t(key.lstrip("#")), key.startswith("#")) for key in spec]


def _summary(f: Formatter, rows: list[tuple[str, Cell]]) -> Table:
    return Table("summary", f.t("summary"), _columns(f, "measure", "#value"),
                 [[f.t(key), value] for key, value in rows])


# --- daily -----------------------------------------------------------------------------------------

def daily_tables(report: DailyReport, f: Formatter) -> list[Table]:
    c = report.counts
    out = [_summary(f, [
        ("received", c.received), ("launched", c.launched), ("completed", c.completed),
        ("completed_on_time", c.completed_on_time), ("on_time_rate", pct(c.on_time_rate)),
        ("cancelled", c.cancelled), ("open", c.open), ("overdue", c.overdue), ("steps_due", c.steps_due),
        ("escalations_raised", c.escalations_raised), ("escalations_resolved", c.escalations_resolved),
    ])]
    entities = Table("entities", f.t("entity_table"),
                     _columns(f, "entity", "#open", "#due_today", "#overdue", "#done", "#done_on_time",
                              "#on_time_rate"),
                     [[f.entity(r.entity), r.open, r.due_today, r.overdue, r.done, r.done_on_time,
                       pct(r.on_time_rate)] for r in report.entities])
    if report.entities:
        done, on_time = sum(r.done for r in report.entities), sum(r.done_on_time for r in report.entities)
        entities.rows.append([f.t("total"), sum(r.open for r in report.entities),
                              sum(r.due_today for r in report.entities), sum(r.overdue for r in report.entities),
                              done, on_time, pct(on_time / done if done else None)])
        entities.total_row = True
    out.append(entities)
    out.append(_overdue_table("overdue", f.t("overdue_list"), report.overdue, f))
    out.append(Table("steps_due", f.t("steps_due_list"), _columns(f, "reference", "title", "step", "entity", "due"),
                     [[s.reference, f.title(s.title, s.title_en), f.title(s.step_name_ar or s.step, s.step_name_en),
                       f.entity(s.entity) if s.entity else f.value(s.role), s.due_at] for s in report.steps_due]))
    out.append(Table("escalations", f.t("escalations_by_level"), _columns(f, "#level", "#raised", "#resolved"),
                     [[e.level, e.raised, e.resolved] for e in report.escalations]))
    if report.forecast is not None:
        out.extend(_forecast_tables(report.forecast, f))
    if report.feedback is not None:
        out.extend(_feedback_tables(report.feedback, f))
    return out


def _forecast_tables(forecast: EscalationForecast, f: Formatter) -> list[Table]:
    """The escalation forecast: per entity and level, per entity, and the steps likeliest to miss."""
    moment = f.moment_long(forecast.moment)
    note = f.t("forecast_past_note" if forecast.past_day else "forecast_note").format(moment=moment)
    levels = Table("forecast_escalations", f.t("forecast_escalations"),
                   _columns(f, "entity", "#level", "#within_24h", "#within_72h"),
                   [[f.entity(r.entity), r.level, r.within_24h, r.within_72h] for r in forecast.escalations],
                   note=note)
    if forecast.escalations:
        levels.rows.append([f.t("total"), None, forecast.total(24), forecast.total(72)])
        levels.total_row = True
    entities = Table("forecast_entities", f.t("forecast_entities"),
                     _columns(f, "entity", "#due_72h", "#expected_misses", "#likely_misses"),
                     [[f.entity(r.entity), r.due_72h, Expected(r.expected_misses), r.likely_misses]
                      for r in forecast.entities])
    if forecast.entities:
        entities.rows.append([f.t("total"), sum(r.due_72h for r in forecast.entities),
                              Expected(forecast.expected_misses), sum(r.likely_misses for r in forecast.entities)])
        entities.total_row = True
    steps = Table("forecast_steps", f.t("forecast_steps"),
                  _columns(f, "reference", "step", "entity", "due", "#probability"),
                  [[s.reference, f.title(s.step_name_ar, s.step_name_en), f.entity(s.entity), s.due_at,
                    pct(s.probability)] for s in forecast.steps], note=f.t("forecast_steps_note"))
    return [levels, entities, steps]


def _overdue_table(key: str, title: str, rows: list[OverdueDirective], f: Formatter) -> Table:
    return Table(key, title, _columns(f, "reference", "title", "entity", "priority", "deadline", "#days_late",
                                      "#level"),
                 [[o.reference, f.title(o.title, o.title_en), f.entity(o.entity), f.value(o.priority), o.deadline_at,
                   Days(o.days_late), o.escalation_level] for o in rows])


def _feedback_tables(feedback: Any, f: Formatter) -> list[Table]:
    """HOOK (issue 9): pilgrim feedback, shown only when a feedback source exists."""
    return [
        Table("feedback", f.t("feedback"), _columns(f, "entity", "#responses", "#mean_rating", "#low_ratings"),
              [[f.entity(r.entity), r.responses, r.mean_rating, r.low_ratings] for r in feedback.by_entity]),
        Table("feedback_comments", f.t("comments"), _columns(f, "entity", "#rating", "comment"),
              [[f.entity(c.entity), c.rating, f.title(c.text_ar, c.text_en)] for c in feedback.comments]),
    ]


# --- periodic --------------------------------------------------------------------------------------

def periodic_tables(report: PeriodicReport, f: Formatter) -> list[Table]:
    totals = report.totals
    out = [_summary(f, [
        ("received", totals["received"]), ("launched", totals["launched"]), ("completed", totals["completed"]),
        ("completed_on_time", totals["completed_on_time"]), ("on_time_rate", pct(report.on_time_rate)),
        ("cancelled", totals["cancelled"]), ("escalations_raised", totals["escalations_raised"]),
        ("overdue_at_end", totals["overdue_at_end"]),
        ("ack_mean", hours(report.acknowledge.mean_hours)), ("ack_p90", hours(report.acknowledge.p90_hours)),
        ("done_mean", hours(report.complete.mean_hours)), ("done_p90", hours(report.complete.p90_hours)),
    ])]
    out.append(Table("days", f.t("trend_by_day"),
                     _columns(f, "date_gregorian", "date_hijri", "#received", "#launched", "#completed",
                              "#completed_on_time", "#cancelled", "#escalations_raised", "#overdue_at_end"),
                     [[d.day, f.hdate(d.hijri), d.received, d.launched, d.completed, d.completed_on_time, d.cancelled,
                       d.escalations_raised, d.overdue] for d in report.days]))
    out.append(_trend_table("entities", f.t("by_entity"), report.entities, f, entity=True))
    out.append(_trend_table("tracks", f.t("by_track"), report.tracks, f, entity=False))
    day_columns = [Column(f"d{i}", f.short_day(d), True) for i, d in enumerate(report.period.days)]
    out.append(Table("completed_by_day", f.t("completed_by_day"), [Column("entity", f.t("entity")), *day_columns],
                     [[f.entity(r.entity), *r.completed_by_day] for r in report.entities]))
    out.append(Table("overdue_by_day", f.t("overdue_by_day"), [Column("entity", f.t("entity")), *day_columns],
                     [[f.entity(r.entity), *r.overdue_by_day] for r in report.entities]))
    out.append(_duration_table("durations_by_entity", f.t("durations_by_entity"), report.durations_by_entity, f,
                               totals=(report.acknowledge, report.complete)))
    out.append(_duration_table("durations_by_track", f.t("durations_by_track"), report.durations_by_track, f))
    out.append(_overdue_table("longest_overdue", f.t("longest_overdue"), report.longest_overdue, f))
    return out


def _trend_table(key: str, title: str, rows: list[TrendRow], f: Formatter, *, entity: bool) -> Table:
    first = "entity" if entity else "track"
    return Table(key, title, _columns(f, first, "#received", "#launched", "#completed", "#on_time_rate", "#cancelled",
                                      "#escalations_raised", "#overdue_at_end"),
                 [[f.entity(r.entity) if entity else f.value(r.key), r.received, r.launched, r.completed,
                   pct(r.on_time_rate), r.cancelled, r.escalations_raised, r.overdue_at_end] for r in rows])


def _duration_table(key: str, title: str, rows: list[DurationRow], f: Formatter,
                    totals: tuple[DurationStats, DurationStats] | None = None) -> Table:
    first = "entity" if key.endswith("entity") else "track"
    table = Table(key, title, _columns(f, first, "#ack_count", "#ack_mean", "#ack_p90", "#done_count", "#done_mean",
                                       "#done_p90"),
                  [[f.entity(r.entity) if r.entity else f.value(r.key), r.acknowledge.count,
                    hours(r.acknowledge.mean_hours), hours(r.acknowledge.p90_hours), r.complete.count,
                    hours(r.complete.mean_hours), hours(r.complete.p90_hours)] for r in rows])
    if totals is not None and rows:
        ack, done = totals
        table.rows.append([f.t("total"), ack.count, hours(ack.mean_hours), hours(ack.p90_hours), done.count,
                           hours(done.mean_hours), hours(done.p90_hours)])
        table.total_row = True
    return table


# --- seasonal --------------------------------------------------------------------------------------

def seasonal_tables(report: SeasonalReport, f: Formatter) -> list[Table]:
    current, previous = report.current, report.previous
    t, p = current.totals, previous.totals if previous else None
    measures: list[tuple[str, Any]] = [
        ("total", lambda g: g.total), ("launched", lambda g: g.total - g.draft), ("completed", lambda g: g.completed),
        ("completed_on_time", lambda g: g.completed_on_time), ("on_time_rate", lambda g: pct(g.on_time_rate)),
        ("completion_rate", lambda g: pct(g.completion_rate)), ("cancelled", lambda g: g.cancelled),
        ("active", lambda g: g.active), ("overdue", lambda g: g.overdue), ("escalated", lambda g: g.escalated),
        ("escalation_rate", lambda g: pct(g.escalation_rate)), ("extended", lambda g: g.extended),
        ("done_mean", lambda g: hours(g.completion.mean_hours)), ("done_p90", lambda g: hours(g.completion.p90_hours)),
    ]
    summary = Table("summary", f.t("summary"), _columns(f, "measure", "#this_season", "#previous_season", "#change"))
    for key, get in measures:
        now_value, then_value = get(t), (get(p) if p is not None else None)
        summary.rows.append([f.t(key), now_value, then_value, _change(now_value, then_value)])
    out = [summary]
    previous_groups = {
        "by_entity": {g.key: g for g in previous.by_entity} if previous else {},
        "by_track": {g.key: g for g in previous.by_track} if previous else {},
        "by_kind": {g.key: g for g in previous.by_kind} if previous else {},
        "by_programme_track": {g.key: g for g in previous.by_programme_track} if previous else {},
    }
    for key, groups in (("by_entity", current.by_entity), ("by_track", current.by_track),
                        ("by_kind", current.by_kind), ("by_programme_track", current.by_programme_track)):
        out.append(_group_table(key, groups, previous_groups[key], f))
    buckets = {b.key: b.count for b in previous.completion_buckets} if previous else {}
    out.append(Table("completion_distribution", f.t("completion_distribution"),
                     _columns(f, "bucket", "#this_season", "#previous_season"),
                     [[f.value(b.key), b.count, buckets.get(b.key) if previous else None]
                      for b in current.completion_buckets]))
    before = {x.level: x for x in previous.escalations_by_level} if previous else {}
    levels = sorted({x.level for x in current.escalations_by_level} | set(before))
    now_levels = {x.level: x for x in current.escalations_by_level}
    out.append(Table("escalations", f.t("escalations_by_level"),
                     [*_columns(f, "#level", "#raised", "#resolved", "#still_open"),
                      Column("previous_raised", f"{f.t('raised')} — {f.t('previous_season')}", True)],
                     [[level, *((now_levels[level].raised, now_levels[level].resolved, now_levels[level].open)
                                if level in now_levels else (0, 0, 0)),
                       before[level].raised if level in before else (0 if previous else None)] for level in levels]))
    out.append(Table("obstacles", f.t("obstacles"),
                     _columns(f, "tag", "#this_season", "#previous_season", "entities_concerned"),
                     [[f.tag(o.tag), o.count, o.previous_count, "، ".join(f.entity(e) for e in o.entities)
                       if f.rtl else ", ".join(f.entity(e) for e in o.entities)] for o in report.obstacles],
                     note=f.t("obstacles_note")))
    out.append(_bottleneck_table(report, f))
    if report.feedback is not None:
        out.extend(_feedback_tables(report.feedback, f))
    return out


def _bottleneck_table(report: SeasonalReport, f: Formatter) -> Table:
    """One table for every model version (a sheet in the XLSX); `Table.grouped` splits it for documents."""
    rows: list[list[Cell]] = []
    for model in report.bottlenecks:
        label = f"{f.title(model.name_ar, model.name_en)} — {f.t('version')} {f.num(model.version)}"
        rows.extend([label, f.title(s.name_ar, s.name_en), s.visits, hours(s.p50_hours), hours(s.p90_hours),
                     pct(s.overdue_share), pct(s.rework_share), s.open_now] for s in model.steps)
    return Table("bottlenecks", f.t("bottlenecks"),
                 _columns(f, "process_model", "step", "#visits", "#p50_open_hours", "#p90_open_hours",
                          "#overdue_share", "#rework_share", "#open_now"), rows, note=f.t("bottlenecks_note"))


def _change(now: Any, then: Any) -> Any:
    if now is None or then is None:
        return None
    if isinstance(now, Pct):
        return Pct(now - then)
    if isinstance(now, Hours):
        return Hours(now - then)
    return now - then


def _group_table(key: str, groups: list[GroupFigures], previous: dict[str, GroupFigures], f: Formatter) -> Table:
    first = {"by_entity": "entity", "by_track": "track", "by_kind": "kind", "by_programme_track": "programme_track"}
    columns = _columns(f, first[key], "#total", "#completed", "#on_time_rate", "#cancelled", "#overdue", "#escalated",
                       "#extended", "#mean_completion_hours", "#p90_completion_hours", "#previous_total",
                       "#previous_on_time_rate")
    rows: list[list[Cell]] = []
    for g in groups:
        before = previous.get(g.key)
        rows.append([f.entity(g.entity) if g.entity else f.value(g.key), g.total, g.completed, pct(g.on_time_rate),
                     g.cancelled, g.overdue, g.escalated, g.extended, hours(g.completion.mean_hours),
                     hours(g.completion.p90_hours), before.total if before else None,
                     pct(before.on_time_rate) if before else None])
    return Table(key, f.t(key), columns, rows)
