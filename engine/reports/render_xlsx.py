"""XLSX reports (openpyxl): a first sheet that says what the report is (title, period in Hijri and
Gregorian, when and from what data), then one sheet per table with a styled, frozen header row.
Arabic workbooks have right-to-left sheets. Cells keep real types: numbers, percentages (0.0%),
local date-times and dates, so the figures can be summed and charted in Excel. Text a spreadsheet would
run as a formula gets a leading apostrophe and is stored as a string cell (`engine.foundation.spreadsheets`)."""

from __future__ import annotations

import io
import re
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from engine.foundation.spreadsheets import append_row
from engine.reports.render_csv import heading
from engine.reports.render_html import formatter
from engine.reports.settings import ReportSettings
from engine.reports.tables import Days, Hours, Pct, tables

HEADER_FILL = PatternFill("solid", fgColor="0F4C45")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14, color="0F4C45")
THIN = Side(style="thin", color="D1D5DB")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def render_xlsx(report: Any, language: str = "ar", settings: ReportSettings | None = None) -> bytes:
    f = formatter(language, settings)
    book = Workbook()
    about = book.active
    about.title = _sheet_name(f.t("summary"), set())
    about.sheet_view.rightToLeft = f.rtl
    lines = heading(report, f)
    append_row(about, [lines[0][0]])
    about["A1"].font = TITLE_FONT
    for label, value in lines[1:]:
        append_row(about, [label, value])
        about.cell(about.max_row, 1).font = Font(bold=True)
    about.column_dimensions["A"].width = 34
    about.column_dimensions["B"].width = 70
    used = {about.title}
    for table in tables(report, f):
        sheet = book.create_sheet(_sheet_name(table.title, used))
        used.add(sheet.title)
        sheet.sheet_view.rightToLeft = f.rtl
        append_row(sheet, [c.label for c in table.columns])
        for cell in sheet[1]:
            cell.fill, cell.font = HEADER_FILL, HEADER_FONT
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for row in table.rows:
            append_row(sheet, [_value(v, f) for v in row])
            for cell, raw in zip(sheet[sheet.max_row], row, strict=True):
                cell.border = Border(top=THIN, bottom=THIN, left=THIN, right=THIN)
                _number_format(cell, raw)
        if table.total_row and table.rows:
            for cell in sheet[sheet.max_row]:
                cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for index, column in enumerate(table.columns, start=1):
            longest = max([len(str(column.label))] + [len(f.cell(r[index - 1])) for r in table.rows[:200]])
            sheet.column_dimensions[get_column_letter(index)].width = min(60, max(10, longest + 2))
        sheet.row_dimensions[1].height = 30
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _value(value: Any, f: Any) -> Any:
    if isinstance(value, Pct | Hours | Days):
        return float(value)
    if isinstance(value, datetime):
        return f.local(value).replace(tzinfo=None)  # Excel has no time zones: local (Riyadh) time
    return value


def _number_format(cell: Any, raw: Any) -> None:
    if isinstance(raw, Pct):
        cell.number_format = "0.0%"
    elif isinstance(raw, Hours | Days):
        cell.number_format = "0.0"
    elif isinstance(raw, datetime):
        cell.number_format = "yyyy-mm-dd hh:mm"
    elif isinstance(raw, date):
        cell.number_format = "yyyy-mm-dd"
    elif isinstance(raw, float):
        cell.number_format = "0.00"


def _sheet_name(title: str, used: set[str]) -> str:
    name = _BAD_SHEET_CHARS.sub(" ", title).strip()[:31] or "sheet"
    candidate, n = name, 2
    while candidate in used:
        suffix = f" ({n})"
        candidate, n = name[: 31 - len(suffix)] + suffix, n + 1
    return candidate
