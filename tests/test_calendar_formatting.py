"""One business calendar and one date/number format: the same input gives the same answer in expressions,
deadlines, meetings, the CLI, pages, emails and reports (issue 22)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from markupsafe import Markup

from api import cli
from api.web import core, i18n
from engine.bpmn import expressions, process_models
from engine.calendar import formatting, seasons
from engine.calendar.business_calendar import (
    SEASON,
    WORKING_DAYS,
    WORKWEEK,
    BusinessCalendar,
    parse_day,
    parse_deadline,
)
from engine.calendar.durations import RIYADH, iso
from engine.delivery import notification_delivery as nd
from engine.directives import directive_import, directives, meetings
from engine.directives.directives import NewDirective
from engine.foundation import clock
from engine.foundation.errors import InvalidInput
from engine.reports.labels import Formatter
from engine.work import instances
from tests.helpers import season_1447

HOLIDAY = date(2026, 5, 24)  # a Sunday
CALENDARS = {
    "workweek": WORKWEEK,
    "season": BusinessCalendar(SEASON),
    "working days with a holiday": BusinessCalendar(WORKING_DAYS, frozenset({HOLIDAY})),
}
START = "2026-05-20T06:00:00+00:00"  # Wednesday 09:00 in Riyadh


# --- working days: expressions count in the BusinessCalendar --------------------------------------------

@pytest.mark.parametrize("name", CALENDARS)
@pytest.mark.parametrize("days", [0, 1, 2, 3, 7])
def test_an_expression_counts_working_days_as_the_business_calendar_does(name: str, days: int) -> None:
    calendar = CALENDARS[name]
    functions = {"add_working_days": expressions.working_days(lambda: calendar)}
    counted = expressions.evaluate("add_working_days(start, days)", {"start": START, "days": days}, functions)
    assert counted == iso(calendar.add_working_days(datetime.fromisoformat(START), days))


def test_an_expression_without_a_season_counts_sunday_to_thursday() -> None:
    assert expressions.evaluate("add_working_days(start, 3)", {"start": START}) == "2026-05-25T06:00:00+00:00"
    assert expressions.evaluate("add_working_days(start, 3)", {"start": START}) == iso(
        WORKWEEK.add_working_days(datetime.fromisoformat(START), 3))


_WORKING_DAYS_MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="defs_wd" targetNamespace="http://tansiq.example/bpmn">
  <bpmn:process id="working_days_check" name="Working days" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="lane_officer" name="follow_up_officer"><bpmn:flowNodeRef>look</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="count" name="Count"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>counted = add_working_days("2026-05-20T06:00:00+00:00", 3)</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:userTask id="look" name="Look"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="count" />
    <bpmn:sequenceFlow id="f2" sourceRef="count" targetRef="look" />
    <bpmn:sequenceFlow id="f3" sourceRef="look" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize("mode, holidays, expected", [
    (SEASON, [], "2026-05-23T06:00:00+00:00"),  # every day works in season
    (WORKING_DAYS, [], "2026-05-25T06:00:00+00:00"),  # Thursday, Sunday, Monday
    (WORKING_DAYS, [HOLIDAY.isoformat()], "2026-05-26T06:00:00+00:00"),  # the holiday Sunday does not count
])
def test_a_directives_workflow_counts_working_days_in_its_seasons_calendar(db, mode, holidays, expected) -> None:
    clock.set_now(datetime(2026, 5, 20, 6, tzinfo=UTC))
    season_1447(db, ("housing", "الإسكان", "Housing"))
    with db.transaction() as session:
        process_models.deploy(session, _WORKING_DAYS_MODEL.encode(), "working_days_check.bpmn", "tester")
        seasons.update_season(session, seasons.get_season(session, 1447), calendar_mode=mode, holidays=holidays)
    with db.transaction() as session:
        directive = directives.create(session, NewDirective(
            title="عدّ أيام العمل", kind="decision", responsible_entity="housing", deadline="P10D",
            process_model_key="working_days_check"), "secretariat", launch_now=True)
        calendar = seasons.get_season(session, 1447).calendar
        assert instances.calendar_of_instance(session, directive.instance_id) == calendar
        instance = instances.get_instance(session, directive.instance_id)
        counted = instances.load_runtime(instance).variables()["counted"]
    assert counted == expected == iso(calendar.add_working_days(datetime.fromisoformat(START), 3))


def test_an_instance_of_no_directive_counts_in_the_workweek(db) -> None:
    with db.transaction() as session:
        process_models.deploy(session, _WORKING_DAYS_MODEL.encode(), "working_days_check.bpmn", "tester")
        instance = instances.start(session, "working_days_check", {}, "tester")
        assert instances.calendar_of_instance(session, instance.id) == WORKWEEK
        assert instances.load_runtime(instance).variables()["counted"] == "2026-05-25T06:00:00+00:00"


def test_a_silly_count_is_refused_the_same_way_everywhere() -> None:
    with pytest.raises(InvalidInput, match="whole number from 0 to 3650"):
        WORKWEEK.add_working_days(datetime.fromisoformat(START), -1)
    with pytest.raises(Exception, match="whole number from 0 to 3650"):
        expressions.evaluate("add_working_days(start, -1)", {"start": START})


# --- one parser of a typed day ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, day", [
    ("1447-12-05", date(2026, 5, 22)),
    ("1447-12-05 هـ", date(2026, 5, 22)),
    ("1447/12/5 AH", date(2026, 5, 22)),
    ("2026-05-22", date(2026, 5, 22)),
])
def test_a_typed_day_reads_the_same_in_deadlines_meetings_imports_and_the_cli(text: str, day: date) -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_day(text) == day
    assert cli._report_day(text) == day
    assert directive_import.parse_day is parse_day and meetings.parse_day is parse_day
    assert meetings.parse_held_at(text) == datetime(day.year, day.month, day.day, tzinfo=RIYADH).astimezone(UTC)
    deadline = parse_deadline(text, now, WORKWEEK)
    assert deadline.astimezone(RIYADH).date() == day and f"{deadline.astimezone(RIYADH):%H:%M}" == "23:59"


@pytest.mark.parametrize("text, message", [
    ("1447-13-05", "not a Hijri date in 1343-1500 AH: 1447-13-05"),
    ("2026-02-30", "not a date: '2026-02-30' (day is out of range for month)"),
])
def test_a_bad_day_gets_the_same_clear_error_everywhere(text: str, message: str) -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    readers = [parse_day, cli._report_day, meetings.parse_held_at, lambda t: parse_deadline(t, now, WORKWEEK)]
    errors = []
    for read in readers:
        with pytest.raises(InvalidInput) as caught:
            read(text)
        errors.append(str(caught.value))
    assert errors == [message] * len(readers)


def test_text_that_is_not_a_day_is_refused_with_the_examples() -> None:
    with pytest.raises(InvalidInput, match="use 2026-05-08 or a Hijri date such as 1447-11-21 هـ"):
        parse_day("27/05/2026")
    with pytest.raises(InvalidInput, match="use 2026-05-08 or a Hijri date such as 1447-11-21 هـ"):
        cli._report_day("next week")


# --- one rendering of a day, a moment and a figure ---------------------------------------------------------

MOMENT = datetime(2026, 6, 1, 11, tzinfo=UTC)  # Monday 14:00 in Riyadh, 15 Dhu al-Hijjah 1447


def _text(markup: Markup) -> str:
    return re.sub(r"<[^>]+>", "", str(markup))


@pytest.mark.parametrize("language, long_day, long_moment, short", [
    ("ar", "الاثنين ١٥ ذو الحجة ١٤٤٧هـ الموافق ١ يونيو ٢٠٢٦م",
     "الاثنين ١٥ ذو الحجة ١٤٤٧هـ الموافق ١ يونيو ٢٠٢٦م، الساعة ١٤:٠٠ بتوقيت الرياض",
     "١٥ ذو الحجة ١٤٤٧هـ (١ يونيو ٢٠٢٦م)"),
    ("en", "Monday 15 Dhu al-Hijjah 1447 AH (1 June 2026)",
     "Monday 15 Dhu al-Hijjah 1447 AH (1 June 2026), 14:00 Riyadh time",
     "15 Dhu al-Hijjah 1447 AH (1 June 2026)"),
])
def test_a_day_reads_the_same_on_pages_in_emails_and_in_reports(language, long_day, long_moment, short) -> None:
    report = Formatter(language, RIYADH)
    day = MOMENT.astimezone(RIYADH).date()
    assert report.both_dates(day) == nd.format_date(day, language) == formatting.long_date(day, language) == long_day
    assert report.moment_long(MOMENT) == nd.format_date(MOMENT, language) == long_moment
    assert nd.format_date(day, language, compact=True) == short
    page = _text(i18n.both_calendars(MOMENT, language, weekday=True))
    separator = "،" if language == "ar" else ","
    assert page == f"{report.weekday(day)} {short}{separator} {formatting.clock_text(MOMENT, language)}"
    assert _text(i18n.both_calendars(day, language)) == short
    assert report.hdate(day) == i18n.hijri_text(day, language)
    assert report.gdate(day) == i18n.gregorian_text(day, language)


def test_the_browser_gets_the_same_names_as_the_server() -> None:
    words = core.environment("ar").globals["calendar_words"]
    assert words["weekdays"].split("|") == list(formatting.WEEKDAYS["ar"])
    assert words["weekdays"].split("|")[0] == "الاثنين"  # CLDR's spelling, as reports always had
    assert words["gregorian_months"].split("|") == list(formatting.GREGORIAN_MONTHS["ar"])
    assert words["hijri_months"].split("|") == list(formatting.HIJRI_MONTHS["ar"])


@pytest.mark.parametrize("value, decimals, arabic, english", [
    (1234.5, 1, "١٬٢٣٤٫٥", "1,234.5"),
    (7, 0, "٧", "7"),
    (None, 0, "—", "—"),
])
def test_a_number_reads_the_same_on_pages_and_in_reports(value, decimals, arabic, english) -> None:
    for language, expected in (("ar", arabic), ("en", english)):
        assert i18n.number(value, language, decimals) == Formatter(language, RIYADH).num(value, decimals) == expected


def test_a_percentage_uses_the_arabic_percent_sign_everywhere() -> None:
    assert i18n.percent(0.5, "ar") == Formatter("ar", RIYADH).pct(0.5) == "٥٠٪"
    assert i18n.percent(0.5, "en") == Formatter("en", RIYADH).pct(0.5) == "50%"
    assert Formatter("ar", RIYADH, digits="latn").pct(0.5) == "50%"  # TANSIQ_REPORTS_DIGITS=latn
    assert Formatter("ar", RIYADH).signed(-3) == "-٣" and Formatter("en", RIYADH).signed(3) == "+3"


def test_an_arabic_email_writes_its_counts_in_arabic_digits() -> None:
    context = {"user_name": "x", "entity_name": "الإسكان", "day": "2026-06-01", "open_count": 12, "overdue_count": 3,
               "items": []}
    arabic, english = nd.render("daily_digest", context, "ar"), nd.render("daily_digest", context, "en")
    assert "١٢" in arabic.subject and "٣" in arabic.subject and "12" not in arabic.subject
    assert "12 open, 3 overdue" in english.subject


def test_a_day_outside_the_umm_al_qura_table_is_shown_in_gregorian_alone() -> None:
    old = date(1900, 1, 1)
    assert formatting.long_date(old, "en") == "Monday 1 January 1900"
    assert _text(i18n.both_calendars(old, "en")) == "1 January 1900"
    assert nd.format_date(old, "en", compact=True) == "1 January 1900"


def test_reports_and_pages_share_the_hijri_date_type() -> None:
    from engine.reports.common import HijriDate

    assert HijriDate is formatting.HijriDate
    assert HijriDate.of(date(2026, 5, 22)).iso == "1447-12-05"
    assert formatting.hijri_text(HijriDate.of(date(2026, 5, 22)), "ar") == "٥ ذو الحجة ١٤٤٧هـ"
