"""Chart data for the HTML/PDF reports. Charts are drawn as inline SVG shapes only: every label and
number stays in HTML around the SVG, because WeasyPrint draws Arabic inside SVG <text> reversed.

A `BarChart` has rows (an entity, a bucket, a level) of one bar per series, drawn horizontally; a
`ColumnChart` has one column group per day. Values are scaled to the largest value in the chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.reports.daily import DailyReport
from engine.reports.labels import Formatter
from engine.reports.periodic import PeriodicReport
from engine.reports.seasonal import SeasonalReport

MAX_ROWS = 14


COLOURS = {"s0": "#0f4c45", "s1": "#15803d", "s2": "#b91c1c", "s3": "#c8a45d"}


@dataclass(frozen=True)
class Series:
    label: str
    css: str  # the colour class: s0, s1, s2, s3

    @property
    def colour(self) -> str:  # WeasyPrint does not apply the page's CSS classes inside SVG: fill explicitly
        return COLOURS[self.css]


@dataclass(frozen=True)
class Bar:
    fraction: float  # of the chart's width or height, 0..1
    text: str  # the value, shown in HTML


@dataclass(frozen=True)
class BarRow:
    label: str
    bars: list[Bar]


@dataclass(frozen=True)
class BarChart:
    key: str
    title: str
    series: list[Series]
    rows: list[BarRow]
    vertical: bool = False  # columns (one group per row) rather than horizontal bars


def _chart(key: str, title: str, series: list[Series], rows: list[tuple[str, list[Any]]], f: Formatter,
           text: Callable[[Any], str] | None = None, scale: float | None = None, vertical: bool = False) -> BarChart:
    numbers = [v for _, values in rows for v in values if v is not None]
    top = scale if scale is not None else max(numbers, default=0) or 1
    show = text or (lambda v: f.num(v))
    return BarChart(key, title, series, [
        BarRow(label, [Bar(0.0 if v is None else max(0.0, min(1.0, v / top)), "—" if v is None else show(v))
                       for v in values])
        for label, values in rows[:MAX_ROWS]
    ], vertical)


def charts(report: Any, f: Formatter) -> dict[str, BarChart]:
    if isinstance(report, DailyReport):
        return _daily(report, f)
    if isinstance(report, PeriodicReport):
        return _periodic(report, f)
    if isinstance(report, SeasonalReport):
        return _seasonal(report, f)
    raise TypeError(f"not a report: {type(report).__name__}")


def _daily(report: DailyReport, f: Formatter) -> dict[str, BarChart]:
    series = [Series(f.t("open"), "s0"), Series(f.t("overdue"), "s2"), Series(f.t("done"), "s1")]
    rows = [(f.entity(r.entity), [r.open, r.overdue, r.done]) for r in report.entities]
    return {"entities": _chart("entities", f.t("entity_table"), series, rows, f)}


def _periodic(report: PeriodicReport, f: Formatter) -> dict[str, BarChart]:
    series = [Series(f.t("received"), "s0"), Series(f.t("completed"), "s1"), Series(f.t("overdue_at_end"), "s2")]
    days = [(f.short_day(d.day), [d.received, d.completed, d.overdue]) for d in report.days]
    on_time = [(f.entity(r.entity), [r.on_time_rate]) for r in report.entities if r.completed]
    return {
        "days": _chart("days", f.t("trend_by_day"), series, days, f, vertical=True),
        "on_time": _chart("on_time", f.t("on_time_rate"), [Series(f.t("on_time_rate"), "s1")], on_time, f,
                          text=f.pct, scale=1.0),
    }


def _seasonal(report: SeasonalReport, f: Formatter) -> dict[str, BarChart]:
    previous = report.previous
    now_label, then_label = f.t("this_season"), f.t("previous_season")
    pair = [Series(now_label, "s0")] + ([Series(then_label, "s3")] if previous else [])
    before = {g.key: g for g in previous.by_entity} if previous else {}
    on_time = [(f.entity(g.entity), [g.on_time_rate] + ([before[g.key].on_time_rate if g.key in before else None]
                                                        if previous else []))
               for g in report.current.by_entity if g.completed or (g.key in before and before[g.key].completed)]
    buckets_before = {b.key: b.count for b in previous.completion_buckets} if previous else {}
    buckets = [(f.value(b.key), [b.count] + ([buckets_before.get(b.key, 0)] if previous else []))
               for b in report.current.completion_buckets]
    levels_before = {x.level: x.raised for x in previous.escalations_by_level} if previous else {}
    levels_now = {x.level: x.raised for x in report.current.escalations_by_level}
    levels = [(f"{f.t('level')} {f.num(level)}", [levels_now.get(level, 0)] +
               ([levels_before.get(level, 0)] if previous else []))
              for level in sorted(set(levels_now) | set(levels_before))]
    return {
        "on_time": _chart("on_time", f.t("on_time_rate"), pair, on_time, f, text=f.pct, scale=1.0),
        "completion": _chart("completion", f.t("completion_distribution"), pair, buckets, f),
        "escalations": _chart("escalations", f.t("escalations_by_level"), pair, levels, f),
    }
