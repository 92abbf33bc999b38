"""The insight sections of the reports and the digest, on SQLite and PostgreSQL: the seasonal report's
bottleneck steps, the daily report's escalation forecast and the forecast line of each entity's digest.

The world (shipped standard model, 1447 season, its calendar counting every hour), worked out by hand:

- T0: five directives of housing (deadline T0 + 48 h) and one of transport (deadline T0 + 20 h) launched;
- T0 + 3 h: housing acknowledges its five (3 h each); transport never does;
- T0 + 10 h: housing executes two of them (7 h each); two verifications open (no due moment);
- kept histories outside the season (season 0) give the forecast something to read: 20 earlier visits of
  transport's acknowledge (40: 10 of 12-18 h, 30 of 24-36 h) and of housing's execute (10 of 12-18 h, 10 of
  72-96 h).

At T0 + 11 h (the daily report and the digest): escalation level 1 of transport at T0 + 20 h (in 9 h) and
level 2 at T0 + 44 h; housing's five level 1 at T0 + 48 h and level 2 at T0 + 72 h (all within 72 h).
Transport's acknowledge, open 11 h with 9 h left: S(20) / S(11) = 0.75 / 1; each of housing's three open
executions (opened at T0 + 3 h), open 8 h with 37 h left: S(45) / S(8) = (10/22) / (20/22) = 0.5 (its own
two visits of 7 h count too).

At T0 + 49 h (the seasonal report; the clock moved, no timer run): acknowledge opened 6 times, five done
in 3 h (median 2 + 2 x 2.5/5 = 3.0, p90 3.8 inside the 2-4 h bucket) and transport's past due (1/6
overdue); execute opened 5 times, two done in 7 h (median 7.0, p90 7.8), three open past due (3/5).
Verify was opened twice only: not ranked.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from engine.bpmn import process_models
from engine.calendar import seasons
from engine.delivery import notification_delivery as nd
from engine.directives import directives
from engine.directives.directives import Directive, NewDirective
from engine.foundation import clock
from engine.reports import daily, seasonal
from engine.reports.render_csv import render_csv
from engine.reports.render_html import render_html
from engine.reports.render_pdf import render_pdf
from engine.reports.render_xlsx import render_xlsx
from engine.work.step_figures import FIGURES, NO_SEASON, StepTally
from tests.test_reports_render import BIDI_CONTROLS
from tests.test_shipped_models import STANDARD, T0, WORK, at, do, launch, seed_world

HOUR = timedelta(hours=1)
NOW = T0 + 11 * HOUR  # 2026-05-20 20:00 Riyadh
LATER = T0 + 49 * HOUR
DAY = date(2026, 5, 20)
PNG_DIR = os.environ.get("TANSIQ_TEST_PNG_DIR")  # set it to keep a PNG of each section's page for a look


def build(db) -> dict[str, list[int]]:
    seed_world(db)
    housing = [launch(db, STANDARD) for _ in range(5)]
    with db.transaction() as session:
        transport = directives.create(session, NewDirective(
            title="تنظيم حافلات النقل إلى المسجد النبوي", title_en="Organise the buses to the Prophet's Mosque",
            kind="directive", responsible_entity="transport", deadline=T0 + 20 * HOUR, process_model_key=STANDARD,
        ), "secretariat", launch_now=True).id
    clock.set_now(T0 + 3 * HOUR)
    for run in housing:
        do(db, run, "acknowledge", {"note": "received"}, "housing")
    clock.set_now(T0 + 10 * HOUR)
    for run in housing[:2]:
        do(db, run, "execute", WORK, "housing")
    with db.transaction() as session:
        model_id = process_models.list_versions(session, STANDARD)[0].id
        row = {**dict.fromkeys(FIGURES, 0), "process_model_id": model_id, "season_id": NO_SEASON, "track": "-",
               "opened_on": date(2025, 5, 1)}
        session.execute(StepTally.__table__.insert(), [
            {**row, "element_id": "acknowledge", "entity": "transport", "completed": 40, "h07": 10, "h09": 30},
            {**row, "element_id": "execute", "entity": "housing", "completed": 20, "h07": 10, "h12": 10},
        ])
    at(db, NOW)
    return {"housing": [run.directive_id for run in housing], "transport": [transport]}


@pytest.fixture
def world(db):
    ids = build(db)
    return db, ids


def _references(db, ids: list[int]) -> list[str]:
    with db.reading() as session:
        return [session.get(Directive, i).reference for i in ids]


# --- the seasonal report's bottleneck steps ------------------------------------------------------------

def _seasonal(db):
    clock.set_now(LATER)
    with db.reading() as session:
        return seasonal(session, seasons.get_season(session, 1447))


def test_the_seasonal_report_ranks_each_model_versions_bottleneck_steps(world):
    db, _ = world
    report = _seasonal(db)
    [model] = report.bottlenecks
    assert (model.key, model.version, model.name_ar, model.name_en) == (STANDARD, 1, "توجيه: المسار القياسي",
                                                                          "Directive: standard")
    execute, acknowledge = model.steps  # verify, opened twice, is not ranked
    assert (execute.element_id, execute.name_ar, execute.name_en) == (
        "execute", "تنفيذ التوجيه وإرفاق شواهد الإنجاز", "Execute and submit evidence")
    assert (execute.visits, execute.p50_hours, execute.p90_hours, execute.open_now) == (5, 7.0, 7.8, 3)
    assert (execute.overdue_share, execute.rework_share) == (pytest.approx(0.6), 0.0)
    assert (acknowledge.visits, acknowledge.p50_hours, acknowledge.p90_hours, acknowledge.open_now) == (6, 3.0, 3.8, 1)
    assert acknowledge.overdue_share == pytest.approx(1 / 6) and not acknowledge.beyond_buckets


def test_the_bottleneck_section_in_html_xlsx_csv_and_pdf_in_both_languages(world, tmp_path):
    db, _ = world
    report = _seasonal(db)
    arabic = render_html(report, "ar")
    assert "المهام الأكثر اختناقاً" in arabic and "توجيه: المسار القياسي — الإصدار ١" in arabic
    assert "تنفيذ التوجيه وإرفاق شواهد الإنجاز" in arabic and "٧٫٨" in arabic and "٦٠٪" in arabic
    english = render_html(report, "en")
    assert "Bottleneck steps" in english and "Directive: standard — version 1" in english
    assert "Execute and submit evidence" in english and "Median time open (working h)" in english

    book = load_workbook(io.BytesIO(render_xlsx(report, "ar")))
    sheet = book["المهام الأكثر اختناقاً"]
    assert [c.value for c in sheet[1]] == ["نموذج الإجراء", "المهمة", "مرات الفتح", "وسيط مدة الفتح (ساعة عمل)",
                                           "المئين ٩٠ لمدة الفتح (ساعة عمل)", "نسبة التأخر", "نسبة الإعادة",
                                           "المفتوحة الآن"]
    rows = [row for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert rows[0][1:] == ("تنفيذ التوجيه وإرفاق شواهد الإنجاز", 5, 7.0, 7.8, pytest.approx(0.6), 0.0, 3)
    assert rows[1][1:4] == ("استلام التوجيه والإقرار به", 6, 3.0) and rows[1][5] == pytest.approx(1 / 6)
    assert sheet.cell(2, 6).number_format == "0.0%" and sheet.cell(2, 4).number_format == "0.0"
    english_sheet = load_workbook(io.BytesIO(render_xlsx(report, "en")))["Bottleneck steps"]
    assert english_sheet.cell(3, 2).value == "Acknowledge the directive" and english_sheet.cell(3, 3).value == 6

    csv_text = render_csv(report, "en").decode("utf-8-sig")
    assert "# Bottleneck steps" in csv_text and "Execute and submit evidence,5,7.0,7.8,60.0%,0.0%,3" in csv_text
    _pdf_holds(report, "ar", "اختناقا", "seasonal", tmp_path)  # pdftotext drops the tanween
    _pdf_holds(report, "en", "Bottleneck steps", "seasonal", tmp_path)


def test_a_season_without_kept_figures_shows_an_empty_section(world):
    db, _ = world
    with db.transaction() as session:
        seasons.create_season(session, 1448, date(2027, 4, 8), date(2027, 7, 6))
    with db.reading() as session:
        report = seasonal(session, seasons.get_season(session, 1448))
    assert report.bottlenecks == []
    html = render_html(report, "en")
    section = html[html.index("Bottleneck steps"):]
    assert '<p class="empty-state">None</p>' in section[:2000]
    sheet = load_workbook(io.BytesIO(render_xlsx(report, "en")))["Bottleneck steps"]
    assert sheet.max_row == 1  # the header only


# --- the daily report's escalation forecast --------------------------------------------------------------

def test_the_daily_report_forecasts_the_escalations_and_the_misses_ahead(world):
    db, ids = world
    clock.set_now(NOW)
    with db.reading() as session:
        report = daily(session, DAY)
    forecast = report.forecast
    assert forecast.moment == NOW == report.period.as_of and forecast.past_day is False
    assert [(r.entity.code, r.level, r.within_24h, r.within_72h) for r in forecast.escalations] == [
        ("housing", 1, 0, 5), ("housing", 2, 0, 5), ("transport", 1, 1, 1), ("transport", 2, 0, 1)]
    assert (forecast.total(24), forecast.total(72)) == (1, 12)
    assert [(r.entity.code, r.due_72h, r.expected_misses, r.likely_misses) for r in forecast.entities] == [
        ("housing", 3, 1.5, 3), ("transport", 1, 0.75, 1)]
    assert forecast.expected_misses == 2.25
    [transport] = _references(db, ids["transport"])
    first, *rest = forecast.steps
    assert (first.reference, first.step, first.entity.code, first.due_at, first.probability, first.basis) == (
        transport, "acknowledge", "transport", T0 + 20 * HOUR, 0.75, "entity")
    assert sorted(s.reference for s in rest) == sorted(_references(db, ids["housing"][2:]))
    assert {(s.step, s.probability, s.due_at) for s in rest} == {("execute", 0.5, T0 + 48 * HOUR)}


def test_a_past_days_report_says_its_forecast_is_made_now(world):
    db, _ = world
    clock.set_now(NOW + 24 * HOUR)
    with db.reading() as session:
        report = daily(session, DAY)
    assert report.forecast.past_day is True and report.forecast.moment == NOW + 24 * HOUR
    assert report.period.as_of < report.forecast.moment
    assert "لا في نهاية ذلك اليوم" in render_html(report, "ar")
    assert "not at the end of that day" in render_html(report, "en")
    about = load_workbook(io.BytesIO(render_xlsx(report, "en"))).worksheets[0]
    lines = {row[0]: row[1] for row in about.iter_rows(min_row=2, values_only=True)}
    assert lines["Escalation forecast computed at"].endswith("after the report's day had ended")


def test_the_forecast_section_in_html_xlsx_csv_and_pdf_in_both_languages(world, tmp_path):
    db, ids = world
    clock.set_now(NOW)
    with db.reading() as session:
        report = daily(session, DAY)
    arabic = render_html(report, "ar")
    assert "توقعات التصعيد" in arabic and "التصعيدات المتوقعة حسب الجهة" in arabic
    assert "المهام الأرجح تجاوزاً لموعدها" in arabic and "٥٠٪" in arabic
    assert "١٫٥٠" in arabic and "٠٫٧٥" in arabic and "٢٫٢٥" in arabic  # expected misses: two decimals
    assert "استلام التوجيه والإقرار به" in arabic and "لحظة إعداد التقرير" in arabic
    english = render_html(report, "en")
    assert "Escalation forecast" in english and "Steps likeliest to miss" in english and "50%" in english

    book = load_workbook(io.BytesIO(render_xlsx(report, "ar")))
    levels = [r for r in book["التصعيدات المتوقعة حسب الجهة"].iter_rows(min_row=2, values_only=True)]
    assert levels == [("الإسكان", 1, 0, 5), ("الإسكان", 2, 0, 5), ("النقل", 1, 1, 1), ("النقل", 2, 0, 1),
                      ("الإجمالي", None, 1, 12)]
    entities = [r for r in book["المهام المستحقة خلال ٧٢ ساعة"].iter_rows(min_row=2, values_only=True)]
    assert entities == [("الإسكان", 3, 1.5, 3), ("النقل", 1, 0.75, 1), ("الإجمالي", 4, 2.25, 4)]
    steps_sheet = book["المهام الأرجح تجاوزاً لموعدها"]
    [transport] = _references(db, ids["transport"])
    first = [c.value for c in steps_sheet[2]]
    assert first[0] == transport and first[1] == "استلام التوجيه والإقرار به" and first[2] == "النقل"
    assert first[3].isoformat() == "2026-05-21T05:00:00" and first[4] == 0.75  # due T0 + 20 h, Riyadh time
    assert steps_sheet.cell(2, 5).number_format == "0.0%" and steps_sheet.max_row == 5
    english_book = load_workbook(io.BytesIO(render_xlsx(report, "en")))
    assert [c.value for c in english_book["Steps due within 72 h"][1]] == [
        "Entity", "Open steps due within 72 h", "Expected misses", "Likely to miss (≥ 50 %)"]

    csv_text = render_csv(report, "en").decode("utf-8-sig")
    assert "# Escalations ahead, by entity" in csv_text and "Transport,1,1,1" in csv_text
    assert "Housing,3,1.50,3" in csv_text and "Escalation forecast computed at" in csv_text
    _pdf_holds(report, "ar", "توقعات التصعيد", "daily", tmp_path)
    _pdf_holds(report, "en", "Escalation forecast", "daily", tmp_path)


def _pdf_holds(report, language: str, text: str, name: str, folder: Path) -> None:
    """The PDF renders and holds `text` (read back when poppler is installed); with TANSIQ_TEST_PNG_DIR, the
    page with the section is kept there as a PNG."""
    pdf = render_pdf(report, language)
    assert pdf.startswith(b"%PDF-")
    if shutil.which("pdftotext") is None:
        return
    path = folder / f"{name}.{language}.pdf"
    path.write_bytes(pdf)
    pages = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pages = BIDI_CONTROLS.sub("", pages).split("\f")
    page = next((n for n, content in enumerate(pages, start=1) if text in content), None)
    assert page is not None, f"{text!r} not in the PDF"
    if PNG_DIR and shutil.which("pdftoppm") is not None:
        Path(PNG_DIR).mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-png", "-r", "100", "-f", str(page), "-l", str(page), "-singlefile", str(path),
                        str(Path(PNG_DIR) / f"{name}.{language}")], check=True)


# --- the digest's forecast line ------------------------------------------------------------------------

def test_each_entitys_digest_carries_its_forecast_line(world):
    db, _ = world
    clock.set_now(NOW)
    with db.transaction() as session:
        created = {n.recipient_entity: n.payload for n in nd.daily_digest(session, DAY)}
    assert created["housing"]["forecast"] == {"escalations_24h": 0, "escalations_72h": 10, "due_72h": 3,
                                              "likely_misses": 3, "expected_misses": 1.5}
    assert created["transport"]["forecast"] == {"escalations_24h": 1, "escalations_72h": 2, "due_72h": 1,
                                                "likely_misses": 1, "expected_misses": 0.75}
    english = nd.render("daily_digest", {**created["transport"], "user_name": "Omar", "entity_name": "Transport"},
                        "en").text
    assert ("1 escalation expected in the next 24 hours (2 in 72 hours); 1 of your open steps is likely to miss "
            "its due moment (probability ≥ 50 %).") in english
    housing = nd.render("daily_digest", {**created["housing"], "user_name": "Omar", "entity_name": "Housing"},
                        "en").text
    assert "0 escalations expected in the next 24 hours (10 in 72 hours); 3 of your open steps are likely" in housing
    arabic = nd.render("daily_digest", {**created["housing"], "user_name": "سعد", "entity_name": "الإسكان"}, "ar")
    assert ("التصعيدات المتوقعة خلال الـ٢٤ ساعة القادمة: ٠ (وخلال ٧٢ ساعة: ١٠)؛ ومن مهامكم المفتوحة ٣ مرجّح أن "
            "تتجاوز موعدها النهائي (باحتمال ٥٠٪ فأكثر).") in arabic.text
    assert "التصعيدات المتوقعة" in arabic.html and 'dir="rtl"' in arabic.html


def test_a_digest_payload_without_a_forecast_renders_without_the_line():
    """Digests queued before the forecast existed are rendered from their payload as they are."""
    payload = {"day": "2026-05-20", "entity": "housing", "open_count": 0, "overdue_count": 0, "items": [], "more": 0}
    for language in ("ar", "en"):
        text = nd.render("daily_digest", {**payload, "user_name": "x", "entity_name": "E"}, language).text
        assert "72" not in text
