"""ISO 8601 durations and the small date helpers that models and directives use.

Moments travel through task data as ISO strings in UTC, so they stay JSON and sort as text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.foundation.errors import N_, InvalidInput

RIYADH = ZoneInfo("Asia/Riyadh")
WORKING_WEEKDAYS = frozenset({6, 0, 1, 2, 3})  # Sunday to Thursday (Monday is 0)

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """`PT6H`, `P3D`, `P1DT12H`, `P2W`; months and years are refused (their length is ambiguous)."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if not match or text.strip().upper() in {"P", "PT"} or text.strip().upper().endswith("T"):
        raise InvalidInput(N_("not an ISO 8601 duration of weeks, days, hours, minutes or seconds: %(value)s"),
                           params={"value": repr(text)})
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return timedelta(**parts)


def parse_moment(value: str | datetime) -> datetime:
    """An ISO moment; a naive one is taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(N_("not an ISO 8601 date and time: %(value)s"), params={"value": repr(value)}) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    return parse_moment(moment).isoformat()


def add_duration(start: str | datetime, duration: str) -> str:
    return iso(parse_moment(start) + parse_duration(duration))


def subtract_duration(moment: str | datetime, duration: str) -> str:
    return iso(parse_moment(moment) - parse_duration(duration))


def earliest(*moments: str | None) -> str | None:
    present = [parse_moment(m) for m in moments if m]
    return iso(min(present)) if present else None


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600
