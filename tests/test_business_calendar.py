"""The business calendar and deadline parsing: Hijri and Gregorian dates, durations, working days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.calendar.business_calendar import (
    SEASON,
    WORKING_DAYS,
    BusinessCalendar,
    gregorian_to_hijri,
    hijri_to_gregorian,
    parse_deadline,
)
from engine.foundation.errors import InvalidInput

WEDNESDAY_NOON_RIYADH = datetime(2026, 5, 20, 9, tzinfo=UTC)
OFFICE = BusinessCalendar(WORKING_DAYS, frozenset({date(2026, 5, 24)}))


def test_hijri_and_gregorian_round_trip():
    assert hijri_to_gregorian(1447, 12, 10) == date(2026, 5, 27)
    assert gregorian_to_hijri(date(2026, 5, 27)) == (1447, 12, 10)


@pytest.mark.parametrize(("year", "month", "day"), [(1501, 1, 1), (1342, 12, 29), (1447, 13, 1), (1447, 12, 31)])
def test_hijri_dates_out_of_range_are_refused(year, month, day):
    with pytest.raises(InvalidInput, match="Hijri"):
        hijri_to_gregorian(year, month, day)


def test_season_mode_works_around_the_clock():
    season = BusinessCalendar(SEASON)
    assert season.add(WEDNESDAY_NOON_RIYADH, "3 working days") == datetime(2026, 5, 23, 9, tzinfo=UTC)
    assert season.add(WEDNESDAY_NOON_RIYADH, "PT6H") == datetime(2026, 5, 20, 15, tzinfo=UTC)


def test_working_days_skip_friday_saturday_and_holidays():
    # Thursday 21, (Fri 22, Sat 23, holiday Sun 24), Mon 25, Tue 26
    assert OFFICE.add(WEDNESDAY_NOON_RIYADH, "3 working days") == datetime(2026, 5, 26, 9, tzinfo=UTC)
    assert OFFICE.add(WEDNESDAY_NOON_RIYADH, "3 أيام عمل") == datetime(2026, 5, 26, 9, tzinfo=UTC)
    assert OFFICE.add(WEDNESDAY_NOON_RIYADH, "2 days") == datetime(2026, 5, 22, 9, tzinfo=UTC)
    assert OFFICE.add(WEDNESDAY_NOON_RIYADH, "6 ساعات") == datetime(2026, 5, 20, 15, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("1447-12-10 هـ", datetime(2026, 5, 27, 20, 59, tzinfo=UTC)),  # end of that day in Riyadh
    ("1447/12/10 AH", datetime(2026, 5, 27, 20, 59, tzinfo=UTC)),
    ("2026-05-27", datetime(2026, 5, 27, 20, 59, tzinfo=UTC)),
    ("2026-05-28T10:00", datetime(2026, 5, 28, 7, tzinfo=UTC)),  # no offset: Riyadh time
    ("2026-05-28T10:00Z", datetime(2026, 5, 28, 10, tzinfo=UTC)),
    ("PT6H", datetime(2026, 5, 20, 15, tzinfo=UTC)),
    ("3 working days", datetime(2026, 5, 26, 9, tzinfo=UTC)),
])
def test_deadlines_in_every_accepted_form(text, expected):
    assert parse_deadline(text, WEDNESDAY_NOON_RIYADH, OFFICE) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("2026-05-19", "already passed"),
    ("1501-01-01 هـ", "1343-1500"),
    ("2026-02-30", "not a date"),
    ("P1M", "ISO 8601 duration"),
    ("soon", "not a deadline"),
    ("", "a deadline is"),
])
def test_bad_deadlines_say_what_is_wrong(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_deadline(text, WEDNESDAY_NOON_RIYADH, OFFICE)
