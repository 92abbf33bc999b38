"""Meetings: Hijri and Gregorian dates, attendance, minutes files, recommendations as drafts, "launch all"
(all or nothing, with a report per draft), carried-forward directives, the agenda (CSV, XLSX), access
and the audit trail. Also the shared world of the issue-9 engine tests (`build_world`, `Who`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine.calendar import seasons
from engine.calendar.business_calendar import parse_day
from engine.directives import directives, evidence_store, meetings
from engine.directives.directives import Directive, NewDirective
from engine.foundation import clock
from engine.foundation.errors import Conflict, InvalidInput, NotFound
from engine.people import entities
from engine.storage import audit, file_store
from engine.storage.audit import AuditEvent
from engine.storage.db import Database
from tests.helpers import deploy

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)  # 1447-12-03, in the season
ENTITIES = (("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport"),
            ("civil_defence", "الدفاع المدني", "Civil Defence"))
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Who:
    """A user for the access rules (what `engine.directives.access.Actor` asks for)."""

    username: str
    role: str
    entity_id: int | None = None
    active: bool = True


def build_world(db: Database, *, models: tuple[str, ...] = ("deadline.bpmn",),
                previous_season: bool = False) -> Database:
    clock.set_now(NOW)
    deploy(db, *models)
    with db.transaction() as session:
        if previous_season:
            seasons.create_season(session, 1446, date(2025, 4, 28), date(2025, 7, 26))
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        for code, ar, en in ENTITIES:
            entities.create_entity(session, code, ar, en)
    return db


def entity_id(db: Database, code: str) -> int:
    with db.reading() as session:
        return entities.get_by_code(session, code).id


def season_id(db: Database, year: int = 1447) -> int:
    with db.reading() as session:
        return seasons.get_season(session, year).id


def recommendation(**overrides) -> NewDirective:
    values = {"title": "زيادة عدد الحافلات على خط المطار", "title_en": "More buses on the airport line",
              "kind": "recommendation", "responsible_entity": "transport", "deadline": "PT6H",
              "process_model_key": "deadline", "tags": ["bus_delay"]}
    values.update(overrides)
    return NewDirective(**values)


@pytest.fixture
def world(db):
    return build_world(db)


def _meeting(db: Database, number: int = 1, held: str = "1447-11-28 هـ", **kwargs) -> meetings.Meeting:
    with db.transaction() as session:
        return meetings.create(session, number=number, title_ar=f"الاجتماع الدوري {number}", held=held,
                               actor="secretariat", chair="أمير منطقة المدينة المنورة",
                               attending=kwargs.pop("attending", ["housing", "transport"]), **kwargs)


def test_a_meeting_is_dated_in_hijri_and_gregorian_with_its_attendance(world):
    meeting = _meeting(world, held="1447-11-28 هـ", title_en="Periodic meeting 1", minutes="تمت مناقشة ...")
    assert meeting.held_on == date(2026, 5, 15) and meeting.held_on_hijri == "1447-11-28"
    assert [e.code for e in meeting.attendees] == ["housing", "transport"]
    with world.reading() as session:
        assert seasons.get_season(session, 1447).id == meeting.season_id
        [event] = audit.timeline(session, meetings.subject(meeting.id))
    assert event.action == "meeting.created" and event.payload["attending"] == ["housing", "transport"]
    gregorian = _meeting(world, number=2, held="2026-05-18")
    assert gregorian.held_on_hijri == "1447-12-01" and gregorian.held_on == date(2026, 5, 18)
    moment = _meeting(world, number=3, held="2026-05-19T10:30:00")  # Riyadh time without an offset
    assert moment.held_at == datetime(2026, 5, 19, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(("held", "message"), [
    ("1447-13-01 هـ", "not a Hijri date"),
    ("2026-02-30", "not a date"),
    ("next Tuesday", "not a date"),
    ("1447-02-30", "not a Hijri date"),
])
def test_bad_meeting_dates_are_refused(world, held, message):
    with pytest.raises(InvalidInput, match=message), world.transaction() as session:
        meetings.create(session, number=1, title_ar="اجتماع", held=held, actor="secretariat")


def test_meeting_input_is_checked_and_numbers_are_unique_per_season(world):
    _meeting(world)
    with pytest.raises(Conflict), world.transaction() as session:
        meetings.create(session, number=1, title_ar="مكرر", held="1447-11-29", actor="secretariat")
    with pytest.raises(InvalidInput, match="unknown entity: nowhere"), world.transaction() as session:
        meetings.create(session, number=5, title_ar="اجتماع", held="1447-11-29", actor="s", attending=["nowhere"])
    with pytest.raises(InvalidInput, match="attends a meeting once"), world.transaction() as session:
        meetings.create(session, number=5, title_ar="اجتماع", held="1447-11-29", actor="s",
                        attending=["housing", "housing"])
    with pytest.raises(InvalidInput, match="positive"), world.transaction() as session:
        meetings.create(session, number=0, title_ar="اجتماع", held="1447-11-29", actor="s")
    with pytest.raises(InvalidInput, match="Arabic title"), world.transaction() as session:
        meetings.create(session, number=6, title_ar="  ", held="1447-11-29", actor="s")


def test_updates_record_what_changed(world):
    meeting = _meeting(world)
    with world.transaction() as session:
        meetings.update_meeting(session, meeting.id, "secretariat", chair="وكيل الإمارة", attending=["civil_defence"],
                                held="1447-11-29 هـ", title_en=None)
    with world.transaction() as session:
        meetings.update_meeting(session, meeting.id, "secretariat", chair="وكيل الإمارة")  # no change, no event
    with world.reading() as session:
        meeting = meetings.get_meeting(session, meeting.id)
        events = audit.timeline(session, meetings.subject(meeting.id))
    assert meeting.chair == "وكيل الإمارة" and [e.code for e in meeting.attendees] == ["civil_defence"]
    assert meeting.held_on_hijri == "1447-11-29"
    assert [e.action for e in events] == ["meeting.created", "meeting.updated"]
    assert events[1].payload["attending"] == {"from": ["housing", "transport"], "to": ["civil_defence"]}
    assert events[1].payload["chair"]["to"] == "وكيل الإمارة"


def test_minutes_file_is_stored_like_evidence(world, tmp_path):
    meeting = _meeting(world)
    checked = evidence_store.check("محضر.pdf", PDF, evidence_store.Limits())
    with world.transaction() as session:
        row = meetings.attach_minutes(session, tmp_path, meeting.id, checked, "secretariat")
        assert meetings.document_file(session, tmp_path, row).backend == file_store.DATABASE
        assert file_store.read_bytes(session, tmp_path, row.sha256) == PDF
    with world.reading() as session:
        [document] = meetings.documents(session, meeting.id)
        assert document.filename == "محضر.pdf" and document.content_type == "application/pdf"
        with pytest.raises(NotFound):
            meetings.document(session, meeting.id + 1, document.id)
        actions = [e.action for e in audit.timeline(session, meetings.subject(meeting.id))]
    assert actions == ["meeting.created", "meeting.minutes_attached"]


def _drafts(db: Database, meeting_id: int, *overrides: dict) -> list[Directive]:
    with db.transaction() as session:
        return [meetings.add_recommendation(session, meeting_id, recommendation(**o), "secretariat") for o in overrides]


def test_recommendations_are_drafts_of_the_meeting_and_launch_all_launches_them(world):
    meeting = _meeting(world)
    drafts = _drafts(world, meeting.id, {}, {"responsible_entity": "housing", "title": "توصية ثانية"},
                     {"responsible_entity": "civil_defence", "supporting_entities": ["housing"]})
    assert all(d.status == directives.DRAFT and d.meeting_id == meeting.id and d.kind == "recommendation"
               for d in drafts)
    with world.transaction() as session:
        report = meetings.launch_all(session, meeting.id, "secretariat")
    assert report.ok and report.launched == 3 and [r.outcome for r in report.rows] == ["launched"] * 3
    with world.reading() as session:
        statuses = session.scalars(select(Directive.status).where(Directive.meeting_id == meeting.id)).all()
        actions = [e.action for e in audit.timeline(session, meetings.subject(meeting.id))]
    assert statuses == ["active"] * 3
    assert actions[-1] == "meeting.launched_all"
    with pytest.raises(Conflict, match="no draft"), world.transaction() as session:
        meetings.launch_all(session, meeting.id, "secretariat")


def test_launch_all_is_all_or_nothing_with_a_report_per_draft(world):
    meeting = _meeting(world)
    first, late, third = _drafts(world, meeting.id, {"deadline": "PT3H"}, {"deadline": "PT1H", "title": "متأخرة"},
                                 {"deadline": "PT3H", "responsible_entity": "housing"})
    with world.reading() as session:
        events_before = session.scalar(select(func.count()).select_from(AuditEvent))
    clock.set_now(NOW + timedelta(minutes=90))  # the second draft's deadline has passed
    with world.transaction() as session:
        report = meetings.launch_all(session, meeting.id, "secretariat")
    assert not report.ok and report.launched == 0
    outcomes = {r.reference: (r.outcome, r.code) for r in report.rows}
    assert outcomes == {first.reference: ("not_launched", None), late.reference: ("failed", "invalid-input"),
                        third.reference: ("not_launched", None)}
    [failure] = report.failed
    assert "deadline" in failure.error and "passed" in failure.error
    with world.reading() as session:
        assert set(session.scalars(select(Directive.status).where(Directive.meeting_id == meeting.id))) == {"draft"}
        launched = select(func.count()).select_from(Directive).where(Directive.instance_id.is_not(None))
        assert session.scalar(launched) == 0
        new_events = session.scalars(select(AuditEvent.action).where(AuditEvent.id > events_before)).all()
        assert audit.verify(session).ok
    assert new_events == ["meeting.launch_all_refused"]  # nothing of the undone launches is left in the trail


BROKEN_START = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs_broken"
                  targetNamespace="http://tansiq.example/bpmn">
  <bpmn:process id="broken_start" name="Fails at once" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="compute" name="Compute"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = 100 / 0</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute" />
    <bpmn:sequenceFlow id="f2" sourceRef="compute" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_launch_all_fails_a_draft_whose_process_stops_at_the_start(world):
    from engine.bpmn import process_models

    with world.transaction() as session:
        process_models.deploy(session, BROKEN_START, "broken-start.bpmn", "tester")
    db = world
    meeting = _meeting(db)
    _drafts(db, meeting.id, {}, {"process_model_key": "broken_start", "title": "عملية معطلة"})
    with db.transaction() as session:
        report = meetings.launch_all(session, meeting.id, "secretariat")
    assert [r.outcome for r in report.rows] == ["not_launched", "failed"]
    assert report.rows[1].code == "incident" and "stopped" in report.rows[1].error
    with db.reading() as session:
        assert set(session.scalars(select(Directive.status))) == {"draft"}


def test_events_recorded_earlier_in_the_transaction_survive_a_refused_launch(world):
    """Savepoints that commit write the pending audit events: a launch that succeeds before another
    fails must not take the events recorded earlier in the transaction down with its rollback."""
    meeting = _meeting(world)
    _drafts(world, meeting.id, {"deadline": "PT3H"}, {"deadline": "PT1H"})
    clock.set_now(NOW + timedelta(minutes=90))
    with world.transaction() as session:
        meetings.update_meeting(session, meeting.id, "secretariat", chair="رئيس جديد")  # pending event
        report = meetings.launch_all(session, meeting.id, "secretariat")
    assert not report.ok
    with world.reading() as session:
        actions = [e.action for e in audit.timeline(session, meetings.subject(meeting.id))]
        assert meetings.get_meeting(session, meeting.id).chair == "رئيس جديد"
        assert audit.verify(session).ok
    assert actions == ["meeting.created", "meeting.recommendation_added", "meeting.recommendation_added",
                       "meeting.updated", "meeting.launch_all_refused"]


def test_open_directives_are_carried_forward_to_later_meetings(world):
    first = _meeting(world, number=1, held="1447-11-20")
    second = _meeting(world, number=2, held="1447-11-27")
    third = _meeting(world, number=3, held="1447-12-02")
    still_open, done, draft = _drafts(world, first.id, {}, {"title": "ستُلغى"}, {"title": "مسودة باقية"})
    [of_second] = _drafts(world, second.id, {"responsible_entity": "housing"})
    with world.transaction() as session:
        directives.launch(session, still_open.id, "secretariat")
        directives.cancel(session, done.id, "secretariat", "مكررة")
        directives.launch(session, of_second.id, "secretariat")
    admin = Who("admin", "admin")
    with world.reading() as session:
        page = meetings.meeting_page(session, third.id, admin)
        assert [d.reference for d in page.carried_forward] == [still_open.reference, draft.reference,
                                                               of_second.reference]
        assert page.meeting_numbers == {first.id: 1, second.id: 2}
        assert page.directives == [] and page.can_manage
        assert [d.reference for d in meetings.meeting_page(session, first.id, admin).carried_forward] == []
        transport_user = Who("t", "entity_user", entity_id=entity_id(world, "transport"))
        seen = meetings.meeting_page(session, third.id, transport_user)
        assert [d.reference for d in seen.carried_forward] == [still_open.reference, draft.reference]
        assert not seen.can_manage


def test_the_agenda_exports_as_csv_and_xlsx_in_both_languages(world):
    first = _meeting(world, number=1, held="1447-11-20")
    second = _meeting(world, number=2, held="1447-11-27")
    [carried] = _drafts(world, first.id, {"title": "=HYPERLINK(\"x\")"})
    [own] = _drafts(world, second.id, {"responsible_entity": "housing", "supporting_entities": ["civil_defence"]})
    with world.reading() as session:
        page = meetings.meeting_page(session, second.id, Who("admin", "admin"))
        text = meetings.agenda_csv(page, "ar").decode("utf-8-sig")
        book = load_workbook(io.BytesIO(meetings.agenda_xlsx(page, "en")))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["القسم", "من الاجتماع", "المرجع", "العنوان"]
    assert rows[1][0] == "توصيات هذا الاجتماع" and rows[1][2] == own.reference and rows[1][5] == "الإسكان"
    assert rows[1][6] == "الدفاع المدني" and rows[1][4] == "توصية"
    assert rows[2][0].startswith("توجيهات مفتوحة") and rows[2][1] == "1" and rows[2][2] == carried.reference
    assert rows[2][3] == "'=HYPERLINK(\"x\")"  # never a formula
    sheet = book.active
    assert sheet.title == "Agenda" and not sheet.sheet_view.rightToLeft
    values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "Meeting agenda 2" and values[2][1].startswith("1447-11-27")
    assert ["Recommendations of this meeting", 2, own.reference] == list(values[7][:3])
    assert values[8][0] == "Open directives carried forward" and values[8][9] == "draft"
    with pytest.raises(InvalidInput):
        meetings.agenda(page, "fr")


def test_entity_users_see_meetings_of_their_entity_and_only_their_directives(world):
    attended = _meeting(world, number=1, attending=["housing"])
    other = _meeting(world, number=2, attending=["civil_defence"])
    holding = _meeting(world, number=3, attending=[])
    _drafts(world, attended.id, {"responsible_entity": "transport"}, {"responsible_entity": "housing"})
    _drafts(world, holding.id, {"responsible_entity": "civil_defence", "supporting_entities": ["housing"]})
    housing = Who("h", "entity_user", entity_id=entity_id(world, "housing"))
    with world.reading() as session:
        rows, total = meetings.list_meetings(session, housing)
        assert total == 2 and {m.number for m in rows} == {1, 3}
        with pytest.raises(NotFound):
            meetings.visible_meeting(session, housing, other.id)
        page = meetings.meeting_page(session, attended.id, housing)
        assert [d.responsible_entity.code for d in page.directives] == ["housing"]
        assert meetings.list_meetings(session, Who("v", "viewer"))[1] == 3
        assert meetings.list_meetings(session, Who("x", "entity_user", entity_id=None))[1] == 0
    with pytest.raises(meetings.NotFound), world.reading() as session:
        meetings.visible_meeting(session, Who("gone", "admin", active=False), attended.id)
    from engine.directives import access

    with pytest.raises(access.Forbidden):
        meetings.require_manage(housing)
    meetings.require_manage(Who("s", "secretariat"))


def test_a_recommendation_belongs_to_its_meetings_season(db):
    build_world(db, previous_season=True)
    meeting = _meeting(db)
    with pytest.raises(InvalidInput, match="belongs to season 1447"), db.transaction() as session:
        meetings.add_recommendation(session, meeting.id, recommendation(season_year=1446), "secretariat")
    with pytest.raises(NotFound), db.transaction() as session:
        meetings.add_recommendation(session, 999_999, recommendation(), "secretariat")


def test_parse_day_reads_hijri_and_gregorian():
    assert parse_day("1447-12-10") == date(2026, 5, 27)
    assert parse_day("1447/12/10 AH") == date(2026, 5, 27)
    assert parse_day("2026-05-27") == date(2026, 5, 27)
    assert parse_day(datetime(2026, 5, 26, 22, tzinfo=UTC)) == date(2026, 5, 27)  # 01:00 in Riyadh
    with pytest.raises(InvalidInput):
        parse_day("27/05/2026")
