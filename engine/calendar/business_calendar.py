"""The business calendar: around the clock in season, or Sunday-to-Thursday working days with
holidays; and the parsing of deadlines given as a moment, a Hijri or Gregorian date, or a duration.

People type local times: a moment without an offset, and a date, are read in Asia/Riyadh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from hijridate import Gregorian, Hijri

from engine.calendar.durations import RIYADH, WORKING_WEEKDAYS, parse_duration
from engine.foundation.errors import N_, InvalidInput

SEASON, WORKING_DAYS = "season", "working_days"
MODES = (SEASON, WORKING_DAYS)
END_OF_DAY = time(23, 59)

_DAY = re.compile(r"^\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*(هـ|ه|AH|H)?\s*$", re.IGNORECASE)
LAST_HIJRI_YEAR = 1500  # a day of a year up to this one is Hijri (Umm al-Qura's table ends there), later Gregorian
_UNITS_PATTERN = "working days?|business days?|أيام عمل|يوم عمل|days?|أيام|يوم|hours?|ساعات|ساعة|minutes?|دقائق|دقيقة"
_COUNTED = re.compile(rf"^\s*(\d{{1,4}})\s*({_UNITS_PATTERN})\s*$", re.IGNORECASE)
_UNIT = {
    "working day": "working_days", "working days": "working_days", "business day": "working_days",
    "business days": "working_days", "أيام عمل": "working_days", "يوم عمل": "working_days",
    "day": "days", "days": "days", "أيام": "days", "يوم": "days",
    "hour": "hours", "hours": "hours", "ساعات": "hours", "ساعة": "hours",
    "minute": "minutes", "minutes": "minutes", "دقائق": "minutes", "دقيقة": "minutes",
}


@dataclass(frozen=True)
class BusinessCalendar:
    mode: str = SEASON
    holidays: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if self.mode == SEASON:
            return True
        return day.weekday() in WORKING_WEEKDAYS and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """`days` working days after `start` (Riyadh days), keeping the time of day."""
        if isinstance(days, bool) or not isinstance(days, int) or days < 0 or days > 3650:
            raise InvalidInput(N_("working days must be a whole number from 0 to 3650, not %(value)s"),
                               params={"value": repr(days)})
        local = start.astimezone(RIYADH)
        while days > 0:
            local += timedelta(days=1)
            if self.is_working_day(local.date()):
                days -= 1
        return local.astimezone(UTC)

    def add(self, start: datetime, duration: str) -> datetime:
        """`PT6H`, `P3D`, `3 working days`, `3 أيام عمل`, `2 days`, `6 hours`, `30 minutes`."""
        counted = _COUNTED.match(duration) if isinstance(duration, str) else None
        if counted:
            amount, unit = int(counted.group(1)), _UNIT[counted.group(2).lower()]
            if unit == "working_days":
                return self.add_working_days(start, amount)
            return start + timedelta(**{unit: amount})
        return start + parse_duration(duration)


# The calendar of a workflow that belongs to no season (a bare process, a directive without a season):
# Sunday to Thursday, no holidays.
WORKWEEK = BusinessCalendar(WORKING_DAYS)


def calendar_of(mode: str | None, holidays: list[str] | None) -> BusinessCalendar:
    """A season's calendar from its stored columns (no mode: around the clock)."""
    if not mode:
        return BusinessCalendar()
    return BusinessCalendar(mode, frozenset(date.fromisoformat(day) for day in holidays or []))


def hijri_to_gregorian(year: int, month: int, day: int) -> date:
    try:
        return date(*Hijri(year, month, day, validate=True).to_gregorian().datetuple())
    except (OverflowError, ValueError):
        raise InvalidInput(N_("not a Hijri date in 1343-1500 AH: %(date)s"),
                           params={"date": f"{year}-{month:02d}-{day:02d}"}) from None


def gregorian_to_hijri(day: date) -> tuple[int, int, int]:
    try:
        return Gregorian(day.year, day.month, day.day).to_hijri().datetuple()
    except (OverflowError, ValueError) as exc:
        raise InvalidInput(N_("%(date)s is outside the Umm al-Qura calendar's range (%(reason)s)"),
                           params={"date": day.isoformat(), "reason": str(exc)}) from None


def parse_day(value: str | date | datetime) -> date:
    """The one reading of a day people type, everywhere (deadlines, meetings, imports, the CLI, forms):
    Gregorian `2026-05-22` or Hijri `1447-12-05`, `1447-12-05 هـ`, `1447/12/5 AH`. A year up to 1500 is
    Hijri (Umm al-Qura), a later one Gregorian; a datetime gives its Riyadh day (naive: Riyadh time)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=RIYADH)).astimezone(RIYADH).date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not (match := _DAY.match(value)):
        raise InvalidInput(N_("not a date: %(value)s; use 2026-05-08 or a Hijri date such as 1447-11-21 هـ"),
                           params={"value": repr(value)})
    year, month, day = (int(g) for g in match.groups()[:3])
    if match.group(4) or year <= LAST_HIJRI_YEAR:
        return hijri_to_gregorian(year, month, day)
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise InvalidInput(N_("not a date: %(value)s (%(reason)s)"),
                           params={"value": repr(value), "reason": str(exc)}) from None


def is_day(text: str) -> bool:
    """Whether `text` is written as a day (what `parse_day` reads), valid or not."""
    return bool(_DAY.match(text))


def parse_deadline(value: str | datetime, now: datetime, calendar: BusinessCalendar) -> datetime:
    """A deadline as a UTC moment; it must lie in the future."""
    moment = _parse_deadline(value, now, calendar)
    if moment <= now:
        raise InvalidInput(N_("the deadline %(moment)s has already passed"),
                           params={"moment": moment.astimezone(RIYADH).strftime("%Y-%m-%d %H:%M")})
    return moment


def _parse_deadline(value: str | datetime, now: datetime, calendar: BusinessCalendar) -> datetime:
    if isinstance(value, datetime):
        return _local_to_utc(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(N_("a deadline is a moment, a Hijri or Gregorian date, or a duration"))
    text = value.strip()
    if is_day(text):
        return _end_of_local_day(parse_day(text))
    if text[:1].upper() == "P" or _COUNTED.match(text):
        return calendar.add(now, text)
    try:
        return _local_to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise InvalidInput(
            f"not a deadline: {text!r}; use an ISO moment, a Hijri date (1447-12-05 هـ), "
            "a Gregorian date (2026-05-27) or a duration (PT6H, 3 working days)"
        ) from None


def _local_to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=RIYADH)
    return moment.astimezone(UTC)


def _end_of_local_day(day: date) -> datetime:
    return datetime.combine(day, END_OF_DAY, tzinfo=RIYADH).astimezone(UTC)


def working_hours_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> float:
    """The hours from `start` to `end` that fall on working days (every hour in season): how long a step
    was, or has still, in the time its entity works."""
    if end <= start:
        return 0.0
    if calendar.mode == SEASON:
        return (end - start).total_seconds() / 3600
    local, stop, seconds = start.astimezone(RIYADH), end.astimezone(RIYADH), 0.0
    while local < stop:
        next_midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=RIYADH)
        until = min(next_midnight, stop)
        if calendar.is_working_day(local.date()):
            seconds += (until - local).total_seconds()
        local = until
    return seconds / 3600


def add_working_hours(calendar: BusinessCalendar, start: datetime, hours: float) -> datetime:
    """The moment `hours` working hours after `start` (the inverse of `working_hours_between`)."""
    if calendar.mode == SEASON or hours <= 0:
        return start + timedelta(hours=max(hours, 0))
    local, left = start.astimezone(RIYADH), hours * 3600
    while True:
        next_midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=RIYADH)
        if calendar.is_working_day(local.date()):
            available = (next_midnight - local).total_seconds()
            if left <= available:
                return (local + timedelta(seconds=left)).astimezone(UTC)
            left -= available
        local = next_midnight
