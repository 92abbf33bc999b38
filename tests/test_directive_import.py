"""Directives from Excel: the template, validation of every row by row and column (wrong headers, bad
Gregorian and Hijri dates, unknown entities, duplicate references in the file and in the database, bad
choices), all-or-nothing or valid rows, dry runs, launching, the audit trail, 10,000 rows, and the CLI."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from api import cli
from engine.directives import directive_import, directives, meetings
from engine.directives.directive_import import ALL_OR_NOTHING, COLUMNS, VALID_ROWS
from engine.directives.directives import Directive, NewDirective
from engine.foundation import clock
from engine.foundation.errors import InvalidInput
from engine.foundation.settings import get_settings
from engine.storage import audit
from engine.storage.audit import AuditEvent
from engine.storage.db import Database
from tests.test_meetings import NOW, PDF, build_world

SHIPPED = ("directive-standard.bpmn", "directive-multi-entity.bpmn", "directive-urgent.bpmn",
           "circular-acknowledgement.bpmn")
HEADERS_AR = [c.ar for c in COLUMNS]
HEADERS_EN = [c.en for c in COLUMNS]


@pytest.fixture
def world(db):
    return build_world(db, models=SHIPPED)


def workbook(rows: list[list], *, headers: list[list] | None = None, sheet: str = "Directives") -> bytes:
    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet)
    for header in headers if headers is not None else [HEADERS_AR, HEADERS_EN]:
        ws.append(header)
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def row(**values) -> list:
    """A row in the template's column order; everything not given is empty."""
    base = {"title": "توجيه", "kind": "directive", "responsible_entity": "housing", "deadline": "PT48H"}
    base.update(values)
    return [base.get(c.key) for c in COLUMNS]


def run(db: Database, data: bytes, **options) -> directive_import.ImportReport:
    with db.transaction() as session:
        return directive_import.import_directives(session, data, "secretariat", **options)


def count_directives(db: Database) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count()).select_from(Directive))


def problems(report) -> set[tuple[int, str, str, str]]:
    return {(e.row, e.column, e.field, e.code) for e in report.errors}


def test_the_template_has_both_headers_lists_and_instructions(world):
    with world.reading() as session:
        data = directive_import.template(session, "ar")
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["التوجيهات", "Lists", "تعليمات"]
    sheet = book["التوجيهات"]
    assert sheet.sheet_view.rightToLeft and sheet.freeze_panes == "A3"
    assert [c.value for c in sheet[1]][:4] == ["المرجع", "العنوان *", "العنوان بالإنجليزية", "النوع *"]
    assert [c.value for c in sheet[2]][:4] == ["Reference", "Title *", "Title (English)", "Kind *"]
    validations = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert validations["D3:D10002"] == "=Lists!$A$2:$A$5"  # kind
    assert validations["E3:E10002"] == "=Lists!$E$2:$E$4"  # responsible entity: three entities
    assert {"I3:I10002", "J3:J10002", "K3:K10002", "L3:L10002"} <= set(validations)  # track, programme, priority, #
    lists = book["Lists"]
    assert lists.sheet_state == "hidden"
    assert [lists.cell(row=r, column=1).value for r in range(2, 6)] == ["قرار", "تعميم", "توجيه", "توصية"]
    assert lists["E2"].value == "الدفاع المدني (civil_defence)"
    with world.reading() as session:
        english = load_workbook(io.BytesIO(directive_import.template(session, "en")))
    assert english.sheetnames[0] == "Directives" and english["Lists"]["A2"].value == "Decision"


def test_a_filled_template_imports_with_hijri_gregorian_and_duration_deadlines(world):
    with world.transaction() as session:
        meetings.create(session, number=3, title_ar="الاجتماع الثالث", held="1447-11-25", actor="secretariat")
    with world.reading() as session:
        book = load_workbook(io.BytesIO(directive_import.template(session, "ar")))
    sheet = book["التوجيهات"]
    rows = [
        row(title="رفع جاهزية مراكز الاستقبال", kind="توجيه", responsible_entity="الإسكان (housing)",
            deadline="1447-12-05 هـ", priority="عالية", tags="الاستقبال، readiness", issued_on="1447-12-01"),
        row(title="زيادة الحافلات", kind="Recommendation", responsible_entity="Transport",
            supporting_entities="housing, الدفاع المدني", deadline="2026-05-25", meeting=3, track="التقنية"),
        row(title="تعميم ساعات العمل", kind="تعميم", responsible_entity=None, deadline="3 أيام",
            programme_track="تنسيق"),
        row(title="عاجل", kind="decision", deadline=datetime(2026, 5, 21, 18, 30), priority="urgent",
            reference="قرار-1447-7"),
        row(title="تاريخ من Excel", deadline=datetime(2026, 5, 30), issued_on=datetime(2026, 5, 19)),
    ]
    for values in rows:
        sheet.append(values)
    buffer = io.BytesIO()
    book.save(buffer)
    stages: list[str] = []
    report = run(world, buffer.getvalue(), progress=lambda stage, done, total: stages.append(stage))
    assert report.ok and report.imported == 5 and report.errors == [], report.errors
    assert [r.status for r in report.rows] == ["imported"] * 5 and [r.row for r in report.rows] == [3, 4, 5, 6, 7]
    assert {"validate", "import"} <= set(stages)
    with world.reading() as session:
        made = {d.title: d for d in session.scalars(select(Directive))}
        first, second, circular = made["رفع جاهزية مراكز الاستقبال"], made["زيادة الحافلات"], made["تعميم ساعات العمل"]
        assert first.reference == "1447/0001" and first.deadline_at == datetime(2026, 5, 22, 20, 59, tzinfo=UTC)
        assert first.priority == "high" and sorted(t.tag for t in first.tags) == ["readiness", "الاستقبال"]
        assert str(first.issued_on) == "2026-05-18" and first.status == "draft"
        assert second.kind == "recommendation" and second.track == "technology" and second.meeting_id is not None
        assert [e.code for e in second.supporting_entities] == ["housing", "civil_defence"]
        assert second.process_model_key == "directive_multi_entity"
        assert second.deadline_at == datetime(2026, 5, 25, 20, 59, tzinfo=UTC)
        assert circular.responsible_entity.code == "civil_defence" and len(circular.supporting_entities) == 2
        assert circular.process_model_key == "circular_acknowledgement" and circular.programme_track == "tansiq"
        assert circular.deadline_at == NOW + timedelta(days=3)
        urgent = made["عاجل"]
        assert urgent.reference == "قرار-1447-7" and urgent.process_model_key == "directive_urgent"
        assert urgent.deadline_at == datetime(2026, 5, 21, 15, 30, tzinfo=UTC)  # Excel moments are Riyadh time
        assert made["تاريخ من Excel"].deadline_at == datetime(2026, 5, 30, 20, 59, tzinfo=UTC)
        events = audit.timeline(session, directives.subject(first.id))
        assert [e.action for e in events] == ["directive.created"] and events[0].payload["imported"] is True
        summary = session.scalars(select(AuditEvent).where(AuditEvent.action == "directives.imported")).one()
        assert summary.payload["imported"] == 5 and summary.subject == "season:1447"
        assert audit.verify(session).ok


def test_wrong_headers_are_reported_and_nothing_is_read(world):
    headers = [["Reference", "Titel", "Kind", "Kind", "Deadline", "colour"]]
    report = run(world, workbook([["A-1", "x", "decision", "decision", "PT1H", "red"]], headers=headers))
    assert report.rows == [] and report.imported == 0 and not report.ok
    assert problems(report) == {
        (1, "B", "header", "unknown_header"), (1, "D", "kind", "duplicate_header"),
        (1, "F", "header", "unknown_header"), (1, "", "title", "missing_column"),
        (1, "", "responsible_entity", "missing_column"),
    }
    assert count_directives(world) == 0


def test_headers_are_matched_in_either_language_in_any_order_with_one_header_row(world):
    headers = [["Deadline", "الجهة المسؤولة", "kind", "العنوان *"]]
    report = run(world, workbook([["PT5H", "transport", "قرار", "بعناوين مختلطة"]], headers=headers))
    assert report.ok and report.imported == 1
    with world.reading() as session:
        directive = session.scalars(select(Directive)).one()
    assert directive.responsible_entity.code == "transport" and directive.kind == "decision"


def test_every_bad_cell_is_reported_by_row_and_column_and_nothing_is_imported(world):
    with world.transaction() as session:
        directives.create(session, NewDirective(title="موجود", kind="decision", responsible_entity="housing",
                                                deadline="PT5H", reference="TAKEN-1"), "secretariat")
    rows = [
        row(title="سليم"),  # row 3: fine
        row(deadline="1447-13-01 هـ"),  # 4: no 13th Hijri month
        row(deadline="2026-02-30"),  # 5: no 30 February
        row(deadline="2026-05-01"),  # 6: passed
        row(deadline="next week"),  # 7: not a deadline
        row(issued_on="1447-02-30"),  # 8: Safar has 29 days in 1447
        row(responsible_entity="nowhere", supporting_entities="transport, atlantis"),  # 9
        row(reference="R-1"),  # 10
        row(reference="R-1"),  # 11: twice in the file
        row(reference="TAKEN-1"),  # 12: in the database
        row(reference="bad reference!"),  # 13
        row(kind="order", priority="asap", track="sales"),  # 14
        row(title=None, kind=None, deadline=None),  # 15: missing values
        row(meeting="7"),  # 16: no such meeting
        row(tags="ok, not ok!"),  # 17
        row(supporting_entities="housing"),  # 18: the responsible entity again
        row(title="x" * 501),  # 19
    ]
    report = run(world, workbook(rows))
    assert report.imported == 0 and count_directives(world) == 1
    assert report.total == 17 and report.invalid == 15 and report.valid == 2  # rows 3 and 10
    assert [r.status for r in report.rows][:2] == ["not_imported", "invalid"]
    assert problems(report) == {
        (4, "G", "deadline", "bad_date"), (5, "G", "deadline", "bad_date"), (6, "G", "deadline", "deadline_passed"),
        (7, "G", "deadline", "bad_date"), (8, "H", "issued_on", "bad_date"),
        (9, "E", "responsible_entity", "unknown_entity"), (9, "F", "supporting_entities", "unknown_entity"),
        (11, "A", "reference", "duplicate_reference"), (12, "A", "reference", "reference_taken"),
        (13, "A", "reference", "bad_reference"),
        (14, "D", "kind", "bad_choice"), (14, "K", "priority", "bad_choice"), (14, "I", "track", "bad_choice"),
        (15, "B", "title", "required"), (15, "D", "kind", "required"), (15, "G", "deadline", "required"),
        (16, "L", "meeting", "unknown_meeting"), (17, "N", "tags", "bad_tag"),
        (18, "F", "supporting_entities", "duplicate_entity"), (19, "B", "title", "too_long"),
    }
    by_row = {e.row: e for e in report.errors}
    assert "not a Hijri date" in by_row[4].message and by_row[4].value == "1447-13-01 هـ"
    assert "row 10" in by_row[11].message and by_row[9].header_ar == "الجهات المساندة"
    assert str(by_row[12]) == ("row 12, column A (Reference): the reference TAKEN-1 is taken by a directive in the "
                               "database")


def test_valid_rows_mode_imports_the_good_rows_and_reports_the_others(world):
    rows = [row(title="أول"), row(responsible_entity="nowhere"), row(title="ثالث", reference="R-3")]
    report = run(world, workbook(rows), mode=VALID_ROWS)
    assert report.imported == 2 and [r.status for r in report.rows] == ["imported", "invalid", "imported"]
    assert [r.reference for r in report.rows] == ["1447/0001", None, "R-3"]
    assert count_directives(world) == 2
    again = run(world, workbook([row(title="بعدها")]))  # the sequence moved on: no reference is reused
    assert again.rows[0].reference == "1447/0002"


def test_generated_references_skip_those_taken_by_hand(world):
    with world.transaction() as session:
        directives.create(session, NewDirective(title="يدوي", kind="decision", responsible_entity="housing",
                                                deadline="PT5H", reference="1447/0002"), "secretariat")
    report = run(world, workbook([row(title="a"), row(title="b"), row(title="c", reference="1447/0003")]))
    assert [r.reference for r in report.rows] == ["1447/0001", "1447/0004", "1447/0003"]


def test_a_dry_run_validates_and_stores_nothing(world):
    report = run(world, workbook([row(), row(kind="bad")]), dry_run=True)
    assert [r.status for r in report.rows] == ["valid", "invalid"] and report.imported == 0
    assert count_directives(world) == 0
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0 or all(
            e.action != "directive.created" for e in session.scalars(select(AuditEvent)))


def test_launching_imports_runs_each_process_and_a_failure_undoes_all_in_all_or_nothing(world, monkeypatch):
    report = run(world, workbook([row(title="a"), row(title="b", supporting_entities="transport")]), launch=True)
    assert report.launched == 2 and [r.status for r in report.rows] == ["launched", "launched"]
    with world.reading() as session:
        assert set(session.scalars(select(Directive.status))) == {"active"}

    real_launch = directives.launch

    def failing(session, directive_id, actor):
        if session.get(Directive, directive_id).title == "تفشل":
            raise InvalidInput("the responsible entity was deactivated")
        return real_launch(session, directive_id, actor)

    monkeypatch.setattr(directives, "launch", failing)
    rows = [row(title="c", reference="L-1"), row(title="تفشل", reference="L-2"), row(title="d", reference="L-3")]
    refused = run(world, workbook(rows), launch=True, mode=ALL_OR_NOTHING)
    assert refused.imported == 0 and refused.launched == 0
    assert [r.status for r in refused.rows] == ["not_imported", "launch_failed", "not_imported"]
    assert refused.errors[0].code == "launch_failed" and refused.errors[0].row == 4
    assert count_directives(world) == 2
    kept = run(world, workbook(rows), launch=True, mode=VALID_ROWS)
    assert [r.status for r in kept.rows] == ["launched", "launch_failed", "launched"] and kept.imported == 3
    with world.reading() as session:
        assert session.scalar(select(Directive.status).where(Directive.reference == "L-2")) == "draft"
        assert audit.verify(session).ok


@pytest.mark.parametrize(("data", "code"), [
    (PDF, "bad_file"),
    (b"PK\x03\x04 not really a zip", "bad_file"),
    (None, "empty"),
])
def test_files_that_are_not_workbooks_or_are_empty_are_refused(world, data, code):
    if data is None:
        data = workbook([])
    report = run(world, data)
    assert [e.code for e in report.file_errors] == [code] and report.rows == []


def test_too_many_rows_are_refused(world, monkeypatch):
    monkeypatch.setattr(directive_import, "MAX_ROWS", 3)
    report = run(world, workbook([row(title=str(n)) for n in range(4)]))
    assert [e.code for e in report.file_errors] == ["too_many_rows"] and report.imported == 0


def test_ten_thousand_rows_import_in_one_transaction(world):
    rows = list(directive_import.rows_for_testing(10_000))
    data = workbook(rows)
    started = time.perf_counter()
    report = run(world, data)
    elapsed = time.perf_counter() - started
    print(f"\n10,000 rows on {world.url.get_backend_name()}: {elapsed:.1f} s (engine {report.seconds:.1f} s)")
    assert report.ok and report.imported == 10_000, report.errors[:5]
    assert elapsed < 60
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(Directive)) == 10_000
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "directive.created")) == 10_000
    duplicate = run(world, workbook([*rows[:3], rows[0]]))  # every reference is now taken
    assert {e.code for e in duplicate.errors} == {"reference_taken", "duplicate_reference"}


runner = CliRunner()


@pytest.fixture
def env(world: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TANSIQ_DATABASE_URL", world.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TANSIQ_HOME", str(tmp_path))
    get_settings.cache_clear()
    monkeypatch.setattr(clock, "now", lambda: NOW)  # the CLI's process keeps the tests' clock
    yield tmp_path
    get_settings.cache_clear()


def test_the_cli_writes_the_template_and_imports_with_a_progress_bar(env, world):
    template = env / "template.xlsx"
    result = runner.invoke(cli.app, ["directives", "template", str(template), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert load_workbook(template).sheetnames[0] == "Directives"
    good = env / "good.xlsx"
    good.write_bytes(workbook([row(title="من سطر الأوامر"), row(title="ثان")]))
    result = runner.invoke(cli.app, ["directives", "import", str(good), "--dry-run"])
    assert result.exit_code == 0 and "2 rows: 2 valid, 0 invalid; imported 0" in result.output, result.output
    result = runner.invoke(cli.app, ["directives", "import", str(good), "--launch", "--by", "sec.cli"])
    assert result.exit_code == 0 and "imported 2, launched 2" in result.output, result.output
    bad = env / "bad.xlsx"
    bad.write_bytes(workbook([row(title="جيد"), row(deadline="1447-13-01")]))
    result = runner.invoke(cli.app, ["directives", "import", str(bad)])
    assert result.exit_code == 1 and "not a Hijri date" in result.output and "imported 0" in result.output
    result = runner.invoke(cli.app, ["directives", "import", str(bad), "--mode", "valid_rows"])
    assert result.exit_code == 0 and "imported 1" in result.output, result.output
    result = runner.invoke(cli.app, ["directives", "import", str(bad), "--mode", "sometimes"])
    assert result.exit_code == 2 and "all_or_nothing" in result.output and "valid_rows" in result.output  # usage
    with world.reading() as session:
        assert session.scalar(select(func.count()).select_from(Directive).where(Directive.created_by == "sec.cli")) == 2
