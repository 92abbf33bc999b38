"""Spreadsheet formula injection (issue 24, item 6): hostile text typed into Tansiq — directive titles over
the REST API, an entity's name, a meeting's title and chair, pilgrim feedback through the public form —
comes out of every CSV and XLSX Tansiq writes as text, never as a live formula, while numbers stay
numbers. The exports: the register CSV, the daily, periodic and seasonal reports (CSV and XLSX, Arabic
and English), the meeting agenda (CSV and XLSX) and the import template (REST and web)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from engine.foundation import clock
from engine.foundation.spreadsheets import FORMULA_STARTS, append_row, safe_cell, safe_row, set_cell
from tests.test_api_support import NOW, World, open_world
from tests.ui_support import signed_in

API = "/api/v1"
LINK = '=HYPERLINK("http://evil.example","x")'
TITLES = [LINK, "+1+2 عنوان مضاف", "-3+4 عنوان مطروح", "@SUM(1+1) عنوان", "\t=1+1 tab first", "\r=1+1 cr first"]
FEEDBACK = ["=cmd|' /C calc'!A0 المصاعد متعطلة", "+1+1 الحافلة تأخرت", "@SUM(9*9) لا يوجد ماء"]


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TANSIQ_REPORTS_DIR", str(tmp_path / "reports"))
    from engine.reports.settings import get_report_settings

    get_report_settings.cache_clear()
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built
    get_report_settings.cache_clear()
    clock.set_now(None)


# --- the checks ---------------------------------------------------------------------------------------------

def _is_number(text: str) -> bool:
    """"-5" in a CSV is the number -5 (a spreadsheet reads it so, it runs nothing)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def assert_safe_csv(content: bytes | str) -> list[list[str]]:
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content.lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    bad = [field for row in rows for field in row if field.startswith(FORMULA_STARTS) and not _is_number(field)]
    assert not bad, f"CSV fields a spreadsheet would run as formulas: {bad}"
    return rows


def assert_safe_xlsx(content: bytes) -> Any:
    book = load_workbook(io.BytesIO(content))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_STARTS), f"{sheet.title}!{cell.coordinate}"
    return book


def _xlsx_texts(book: Any) -> set[str]:
    return {c.value for s in book.worksheets for r in s.iter_rows() for c in r if isinstance(c.value, str)}


# --- the one rule, unit by unit -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", LINK])
def test_text_that_would_run_as_a_formula_gets_an_apostrophe(text):
    assert safe_cell(text) == "'" + text
    book = Workbook()
    append_row(book.active, [text, 1])
    cell = set_cell(book.active, 2, 1, text)
    saved = io.BytesIO()
    book.save(saved)
    sheet = load_workbook(saved).active
    for got in (sheet["A1"], sheet["A2"]):
        assert (got.value, got.data_type) == ("'" + text, "s")
    assert cell.data_type == "s"


def test_numbers_dates_and_ordinary_text_are_left_alone():
    values = [-5, -2.5, Decimal("-1.25"), 0, date(2026, 5, 20), datetime(2026, 5, 20, 9, 30), None,
              "الإسكان", "IMP-00001", "a=b", "", "'=already"]
    assert safe_row(values) == values
    book = Workbook()
    append_row(book.active, values)
    types = [c.data_type for c in book.active[1]]
    assert types[:4] == ["n"] * 4 and types[4:6] == ["d", "d"] and types[7:10] == ["s"] * 3
    assert book.active["A1"].value == -5  # a negative number stays a number, with no apostrophe
    buffer = io.StringIO()
    csv.writer(buffer).writerow(safe_row(values))
    assert buffer.getvalue().startswith("-5,-2.5,-1.25,0,")


def test_the_meeting_agenda_keeps_no_neutralisation_of_its_own():
    from engine.directives import meetings

    assert not hasattr(meetings, "_safe_cell")


# --- every export, end to end ---------------------------------------------------------------------------------

def _hostile_world(world: World) -> dict[str, Any]:
    """Hostile text through the doors people use: the REST API and the public feedback form."""
    entity = world.call("admin", "POST", f"{API}/entities",
                        json={"code": "evil", "name_ar": "=HYPERLINK(\"http://evil.example\",\"جهة\")",
                              "name_en": "-Evil entity"})
    assert entity.status_code == 201, entity.text
    made = [world.create_directive(title=t, title_en=t, deadline="PT1H") for t in TITLES]
    made.append(world.create_directive(title="@جهة خبيثة", title_en="@evil", responsible_entity="evil",
                                       deadline="PT1H"))
    meeting = world.call("secretariat", "POST", f"{API}/meetings", json={
        "number": 7, "title_ar": "=1+1 اجتماع", "title_en": "+meeting", "held": "1447-11-28 هـ",
        "chair": "=chair()", "attending": ["housing", "evil"]})
    assert meeting.status_code == 201, meeting.text
    for title in (LINK, "-رقم سالب"):
        draft = world.call("secretariat", "POST", f"{API}/meetings/{meeting.json()['id']}/recommendations", json={
            "title": title, "title_en": title, "responsible_entity": "evil", "deadline": "PT6H",
            "process_model_key": "api_flow"})
        assert draft.status_code == 201, draft.text
    for n, text in enumerate(FEEDBACK):
        clock.set_now(NOW + timedelta(minutes=n))
        token = world.client.get(f"{API}/public/feedback/form").json()["token"]
        clock.set_now(NOW + timedelta(minutes=n, seconds=10))
        sent = world.client.post(f"{API}/public/feedback", json={
            "token": token, "service": "housing", "rating": 1, "text": text, "entity": "housing", "website": ""})
        assert sent.status_code == 202, sent.text
    clock.set_now(NOW + timedelta(hours=3))  # the directives are overdue: they are in the daily report
    return {"directives": made, "meeting": meeting.json()}


def test_the_register_export_is_safe(world: World):
    _hostile_world(world)
    for language in ("ar", "en"):
        export = signed_in(world, "secretariat", language).get("/directives/export.csv")
        assert export.status_code == 200, export.text
        rows = assert_safe_csv(export.text)
        titles = {r[1] for r in rows[1:]}
        assert "'" + LINK in titles and "'+1+2 عنوان مضاف" in titles and "'-3+4 عنوان مطروح" in titles
        assert any(r[-1] == "0" for r in rows[1:])  # the escalation level, a number, as it was


def test_the_meeting_agenda_is_safe(world: World):
    meeting = _hostile_world(world)["meeting"]
    for language in ("ar", "en"):
        url = f"{API}/meetings/{meeting['id']}/agenda"
        rows = assert_safe_csv(world.call("secretariat", "GET", url, params={"format": "csv", "lang": language})
                               .content)
        assert any("'" + LINK in row for row in rows) and any("'-رقم سالب" in row for row in rows)
        book = assert_safe_xlsx(world.call("secretariat", "GET", url, params={"format": "xlsx", "lang": language})
                                .content)
        assert "'" + LINK in _xlsx_texts(book)
        numbers = [c for c in book.active["B"] if isinstance(c.value, int)]
        assert numbers and all(c.data_type == "n" and c.value == 7 for c in numbers)  # "from meeting" stays 7


def test_the_import_template_is_safe(world: World):
    _hostile_world(world)
    for language in ("ar", "en"):
        api = world.call("secretariat", "GET", f"{API}/imports/directives/template", params={"lang": language})
        assert api.status_code == 200, api.text
        book = assert_safe_xlsx(api.content)
        start = "'=HYPERLINK" if language == "ar" else "'-Evil entity"
        assert any(t.startswith(start) and t.endswith("(evil)") for t in _xlsx_texts(book))  # the entity list
        web = signed_in(world, "secretariat").get(f"/import/template.xlsx?lang={language}")
        assert web.status_code == 200
        assert_safe_xlsx(web.content)


@pytest.mark.parametrize("kind, body", [
    ("daily", {"day": "2026-05-20"}),
    ("periodic", {"start": "2026-05-14", "end": "2026-05-20"}),
    ("seasonal", {"season": 1447}),
])
def test_every_report_csv_and_xlsx_is_safe(world: World, kind: str, body: dict[str, Any]):
    _hostile_world(world)
    response = world.call("secretariat", "POST", f"{API}/reports/{kind}/run",
                          json={**body, "formats": ["xlsx", "csv"], "languages": ["ar", "en"]})
    assert response.status_code == 201, response.text
    files = response.json()["files"]
    assert sorted((f["format"], f["language"]) for f in files) == [
        ("csv", "ar"), ("csv", "en"), ("xlsx", "ar"), ("xlsx", "en")]
    texts: set[str] = set()
    for file in files:
        content = world.call("viewer", "GET", file["url"]).content
        if file["format"] == "csv":
            texts |= {field for row in assert_safe_csv(content) for field in row}
        else:
            book = assert_safe_xlsx(content)
            texts |= _xlsx_texts(book)
            _assert_counts_are_numbers(book)
    if kind == "daily":  # the hostile titles (overdue) and the pilgrims' comments are in it, as text
        assert "'" + LINK in texts and "'+1+2 عنوان مضاف" in texts and "'@evil" in texts
        assert "'=cmd|' /C calc'!A0 المصاعد متعطلة" in texts and "'+1+1 الحافلة تأخرت" in texts
    assert any(t.startswith("'=HYPERLINK(\"http://evil.example\",\"جهة\")") or t == "'-Evil entity" for t in texts)


def _assert_counts_are_numbers(book: Any) -> None:
    """The per-entity table's counts are numeric cells (a typed int, data type 'n'), not neutralised text."""
    counts = [c for sheet in book.worksheets[1:] for row in sheet.iter_rows(min_row=2) for c in row[1:]
              if isinstance(c.value, int | float)]
    assert counts and all(c.data_type == "n" for c in counts)
    assert any(isinstance(c.value, int) and c.value >= 1 for c in counts)
