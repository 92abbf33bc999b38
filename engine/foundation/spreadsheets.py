"""Spreadsheet formula injection ("CSV injection"): the one rule for every CSV and XLSX Tansiq writes.

Text that people type — directive titles, entity and meeting names, pilgrim feedback sent through the
public form — ends up in files that staff open in Excel or LibreOffice. There a cell whose text starts
with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula (`=HYPERLINK(...)` sends the
reader to another site; DDE formulas can start programs), and openpyxl itself stores any text that
starts with `=` as a formula. Following the OWASP guidance, such text is written with a leading
apostrophe, so the spreadsheet shows it as text. Numbers, dates and times are not text: they are left
as typed values (a negative number stays a number that can be summed).

The register export, the reports (CSV and XLSX), the meeting agenda and the import template all write
their cells through `safe_cell`, `safe_row`, `append_row` or `set_cell`, so there is one implementation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, overload

T = TypeVar("T")

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""


@overload
def safe_cell(value: str) -> str: ...
@overload
def safe_cell(value: T) -> T: ...
def safe_cell(value: object) -> object:
    """The value to write: text a spreadsheet would run as a formula gets a leading apostrophe; anything
    else (numbers, dates, None, ordinary text) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """A row for `csv.writer.writerow` (or `Worksheet.append`), each cell through `safe_cell`."""
    return [safe_cell(value) for value in values]


def append_row(sheet: Any, values: Iterable[Any]) -> None:
    """Append a row to an openpyxl sheet, neutralised, every text cell stored as a string (never 'f')."""
    row = safe_row(values)
    sheet.append(row)
    if row:
        for cell in sheet[sheet.max_row]:
            _as_text(cell)


def set_cell(sheet: Any, row: int, column: int, value: Any) -> Any:
    """Write one openpyxl cell, neutralised and stored as a string when it is text; returns the cell."""
    cell = sheet.cell(row=row, column=column, value=safe_cell(value))
    _as_text(cell)
    return cell


def _as_text(cell: Any) -> None:
    """openpyxl decides a cell's type from its value; say "string" outright for text, belt and braces."""
    if isinstance(cell.value, str):
        cell.data_type = "s"
