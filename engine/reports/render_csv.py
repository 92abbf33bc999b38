"""CSV reports: one UTF-8 file with a byte-order mark (so Excel reads Arabic), the report's heading
lines first (title, period in Hijri and Gregorian, when and from what data it was made), then each
table as a section: its title on one line, its header, its rows, and a blank line.

Numbers stay plain (Western digits, a dot for decimals); rates as percentages ("75.0%"); moments in
local time ("2026-05-20 15:00"). Text a spreadsheet would run as a formula (it starts with =, +, -, @,
a tab or a carriage return) gets a leading apostrophe (`engine.foundation.spreadsheets`)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from engine.foundation.spreadsheets import safe_cell, safe_row
from engine.reports.labels import Formatter
from engine.reports.render_html import formatter
from engine.reports.settings import ReportSettings
from engine.reports.tables import Days, Hours, Pct, tables


def render_csv(report: Any, language: str = "ar", settings: ReportSettings | None = None) -> bytes:
    f = formatter(language, settings)
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    for label, value in heading(report, f):
        out.writerow(safe_row([label, value]))
    out.writerow([])
    for table in tables(report, f):
        out.writerow(safe_row([f"# {table.title}"]))
        out.writerow(safe_row(c.label for c in table.columns))
        for row in table.rows:
            out.writerow([_text(value, f) for value in row])
        out.writerow([])
    return buffer.getvalue().encode("utf-8-sig")


def heading(report: Any, f: Any) -> list[tuple[str, str]]:
    """The lines that say what a report is, shared with the XLSX summary sheet."""
    source = report.source
    return [
        (f.t(report.kind), f.t("unit")),
        (f.t("season"), f.season(report.season)),
        (f"{f.t('period')} ({f.t('date_hijri')})", f.period_hijri(report.period)),
        (f"{f.t('period')} ({f.t('date_gregorian')})", f.period_gregorian(report.period)),
        (f.t("as_of"), f.moment(report.period.as_of)),
        (f.t("generated_at"), f.moment_long(report.generated_at)),
        (f.t("data_source"), source.database),
        (f.t("schema_revision"), source.schema_revision or ""),
        (f.t("audit_head"), f"#{source.audit_event_id} {source.audit_hash}"),
        (f.t("tansiq_version"), source.tansiq_version),
        *_forecast_line(report, f),
    ]


def _forecast_line(report: Any, f: Any) -> list[tuple[str, str]]:
    """When the daily report's forecast was computed: the sheets and sections carry no notes."""
    forecast = getattr(report, "forecast", None)
    if forecast is None:
        return []
    when = f.moment_long(forecast.moment)
    return [(f.t("forecast_moment"), f"{when} — {f.t('forecast_past_short')}" if forecast.past_day else when)]


def _text(value: Any, f: Formatter) -> str:
    """A cell as CSV text: numbers formatted plainly (a negative one stays "-5"), text neutralised."""
    if isinstance(value, str):
        return safe_cell(value)
    if value is None:
        return ""
    if isinstance(value, Pct):
        return f"{value * 100:.1f}%"
    if isinstance(value, Hours | Days):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return f.local(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
