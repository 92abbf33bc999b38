"""Renderers: HTML (Arabic RTL and English), PDF (WeasyPrint, Arabic fonts), XLSX (right-to-left sheets,
one per table) and CSV (UTF-8 with BOM), each stating its period in Hijri and Gregorian dates and
when and from what data it was made. One world on SQLite, built once for the module."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date

import pytest
from openpyxl import load_workbook

from engine.calendar import seasons
from engine.foundation import clock
from engine.people.entities import EntityRef
from engine.reports import daily, periodic, seasonal
from engine.reports.feedback import FeedbackComment, FeedbackEntityRow, FeedbackSummary
from engine.reports.render_csv import render_csv
from engine.reports.render_html import render_html
from engine.reports.render_pdf import render_pdf
from engine.reports.render_xlsx import render_xlsx
from engine.storage.db import Database
from engine.system import migrate
from tests.test_reports_world import DAY, build

BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
TITLES = {"daily": "التقرير اليومي لنتائج المتابعة", "periodic": "التقرير الدوري لنتائج المتابعة",
          "seasonal": "التقرير الموسمي لنتائج المتابعة"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('render') / 'tansiq.db'}"
    migrate.upgrade(url)
    db = Database(url)
    try:
        build(db)
        with db.reading() as session:
            made = {"daily": daily(session, DAY), "periodic": periodic(session, date(2026, 5, 14), DAY),
                    "seasonal": seasonal(session, seasons.get_season(session, 1447))}
    finally:
        clock.set_now(None)
        db.dispose()
    return made


def test_arabic_html_is_right_to_left_with_both_calendars_and_provenance(reports):
    html = render_html(reports["daily"], "ar")
    assert '<html lang="ar" dir="rtl">' in html
    assert TITLES["daily"] in html
    assert "الأربعاء ٣ ذو الحجة ١٤٤٧هـ" in html and "٢٠ مايو ٢٠٢٦م" in html  # Hijri and Gregorian
    assert "بتوقيت الرياض" in html and "sqlite:///" in html and "إصدار المخطط" in html
    assert "الإسكان" in html and "النقل" in html  # entity names in Arabic
    assert re.search(r"<svg[^>]*>.*?</svg>", html, re.S)  # charts ...
    assert "<text" not in html  # ... with no text inside SVG: WeasyPrint would draw Arabic reversed
    assert "رأي الحاج" not in html  # no pilgrim feedback section without a source (issue 9)


def test_english_html_is_left_to_right(reports):
    html = render_html(reports["daily"], "en")
    assert '<html lang="en" dir="ltr">' in html and "Daily follow-up report" in html
    assert "Wednesday 3 Dhu al-Hijjah 1447 AH" in html and "20 May 2026" in html
    assert "Riyadh time" in html and "Transport" in html


@pytest.mark.parametrize("kind", ["daily", "periodic", "seasonal"])
def test_every_report_renders_in_every_format(reports, kind):
    report = reports[kind]
    for language in ("ar", "en"):
        html = render_html(report, language)
        assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
        assert render_pdf(report, language).startswith(b"%PDF-")
        book = load_workbook(io.BytesIO(render_xlsx(report, language)))
        assert len(book.sheetnames) >= 4
        assert render_csv(report, language).startswith(b"\xef\xbb\xbf")
    assert TITLES[kind] in render_html(report, "ar")


@pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdffonts") is None,
                    reason="poppler-utils is not installed")
def test_arabic_pdf_uses_the_arabic_fonts_and_holds_the_titles(reports, tmp_path):
    path = tmp_path / "daily.ar.pdf"
    path.write_bytes(render_pdf(reports["daily"], "ar"))
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Noto-Naskh-Arabic" in fonts and "Noto-Kufi-Arabic" in fonts
    text = BIDI_CONTROLS.sub("", subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                                                check=True).stdout)
    assert TITLES["daily"] in text and "ذو الحجة" in text and "مايو" in text
    english = tmp_path / "seasonal.en.pdf"
    english.write_bytes(render_pdf(reports["seasonal"], "en"))
    text = subprocess.run(["pdftotext", str(english), "-"], capture_output=True, text=True, check=True).stdout
    assert "Seasonal follow-up report" in text and "Dhu al-Qa'dah 1447 AH" in text and "Recurring obstacles" in text


def test_xlsx_has_right_to_left_sheets_a_frozen_styled_header_and_real_numbers(reports):
    book = load_workbook(io.BytesIO(render_xlsx(reports["daily"], "ar")))
    about = book.worksheets[0]
    assert about.sheet_view.rightToLeft is True
    cells = [str(c.value) for row in about.iter_rows() for c in row if c.value is not None]
    assert TITLES["daily"] in cells and any("ذو الحجة" in c for c in cells) and any("مايو" in c for c in cells)
    sheet = book["أداء الجهات"]
    assert sheet.sheet_view.rightToLeft is True and sheet.freeze_panes == "A2"
    assert sheet["A1"].value == "الجهة" and sheet["A1"].font.bold and sheet["A1"].fill.fgColor.rgb.endswith("0F4C45")
    rows = {row[0]: row[1:] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["النقل"] == (2, 1, 1, 0, 0, None) and rows["الإسكان"][-1] == 1.0
    assert sheet.cell(3, 7).number_format == "0.0%"
    overdue = book["التوجيهات المتأخرة"]
    assert overdue.cell(2, 5).value.isoformat() == "2026-05-19T18:00:00"  # the deadline, Riyadh time
    english = load_workbook(io.BytesIO(render_xlsx(reports["daily"], "en")))
    assert english.worksheets[0].sheet_view.rightToLeft in (False, None) and "Entities" in english.sheetnames


def test_csv_is_utf8_with_bom_and_states_period_and_source(reports):
    data = render_csv(reports["periodic"], "ar")
    assert data[:3] == b"\xef\xbb\xbf"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == TITLES["periodic"]
    flat = "\n".join(",".join(r) for r in rows)
    assert "من ٢٧ ذو القعدة ١٤٤٧هـ إلى ٣ ذو الحجة ١٤٤٧هـ" in flat and "مصدر البيانات" in flat
    assert "# الاتجاه اليومي" in flat
    days = rows.index(["# الاتجاه اليومي"])
    assert rows[days + 1][0] == "التاريخ الميلادي" and rows[days + 2][0] == "2026-05-14"
    assert rows[days + 8][2:] == ["5", "4", "3", "2", "1", "1", "1"]  # 2026-05-20: plain digits in CSV


def test_feedback_section_appears_when_the_report_has_feedback(reports):
    """The HOOK for issue 9: the data carries a feedback section once a source is registered."""
    housing = EntityRef("housing", "الإسكان", "Housing")
    summary = FeedbackSummary(3, 2.7, [FeedbackEntityRow(housing, 3, 2.7, 1)],
                              [FeedbackComment(housing, 1, "التكييف لا يعمل في الغرفة منذ يومين", None)])
    with_feedback = replace(reports["daily"], feedback=summary)
    html = render_html(with_feedback, "ar")
    assert "رأي الحاج" in html and "التكييف لا يعمل" in html
    assert "رأي الحاج" in load_workbook(io.BytesIO(render_xlsx(with_feedback, "ar"))).sheetnames
    assert "# رأي الحاج" in render_csv(with_feedback, "ar").decode("utf-8-sig")
