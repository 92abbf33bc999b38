"""Dates and numbers as people read them, in Arabic (first) and English: the one module that pages,
emails and reports format with, so that the same day or figure reads the same everywhere.

- Gregorian month and weekday names come from Babel's locale data (CLDR: "الاثنين", "May", "Monday").
- Hijri (Umm al-Qura) dates are computed with hijridate; their month names are the project's own list
  (Babel has none for islamic-umalqura).
- Arabic uses Eastern Arabic digits ٠-٩ with the Arabic decimal separator ٫, thousands separator ٬ and
  percent sign ٪, unless a caller asks for Latin digits (`eastern=False`: the reports' TANSIQ_REPORTS_DIGITS).

A day reads "الأربعاء ٣ ذو الحجة ١٤٤٧هـ الموافق ٢٠ مايو ٢٠٢٦م" / "Wednesday 3 Dhu al-Hijjah 1447 AH (20 May 2026)";
a moment adds "، الساعة ٠٩:٠٠ بتوقيت الرياض" / ", 09:00 Riyadh time".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from babel.dates import get_day_names, get_month_names

from engine.calendar.business_calendar import gregorian_to_hijri
from engine.calendar.durations import RIYADH
from engine.foundation.errors import InvalidInput

LANGUAGES = ("ar", "en")

HIJRI_MONTHS: dict[str, tuple[str, ...]] = {
    "ar": ("محرم", "صفر", "ربيع الأول", "ربيع الآخر", "جمادى الأولى", "جمادى الآخرة", "رجب", "شعبان", "رمضان",
           "شوال", "ذو القعدة", "ذو الحجة"),
    "en": ("Muharram", "Safar", "Rabi' al-Awwal", "Rabi' al-Thani", "Jumada al-Ula", "Jumada al-Akhirah", "Rajab",
           "Sha'ban", "Ramadan", "Shawwal", "Dhu al-Qa'dah", "Dhu al-Hijjah"),
}


@cache
def _gregorian_months(language: str) -> tuple[str, ...]:
    names = get_month_names("wide", locale=language)
    return tuple(names[month] for month in range(1, 13))


@cache
def _weekdays(language: str) -> tuple[str, ...]:
    names = get_day_names("wide", locale=language)
    return tuple(names[day] for day in range(7))  # Monday is 0, as date.weekday()


GREGORIAN_MONTHS: dict[str, tuple[str, ...]] = {language: _gregorian_months(language) for language in LANGUAGES}
WEEKDAYS: dict[str, tuple[str, ...]] = {language: _weekdays(language) for language in LANGUAGES}

_EASTERN_DIGITS = str.maketrans("0123456789%", "٠١٢٣٤٥٦٧٨٩٪")
_EASTERN_NUMBER = str.maketrans("0123456789.,%", "٠١٢٣٤٥٦٧٨٩٫٬٪")
_WORDS = {  # (Arabic, English)
    "corresponding": ("الموافق", ""),
    "at": ("الساعة", ""),
    "riyadh_time": ("بتوقيت الرياض", "Riyadh time"),
}


@dataclass(frozen=True)
class HijriDate:
    """A day in the Umm al-Qura calendar."""

    year: int
    month: int
    day: int

    @classmethod
    def of(cls, day: date) -> HijriDate:
        return cls(*gregorian_to_hijri(day))

    @property
    def iso(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


def _eastern(language: str, eastern: bool | None) -> bool:
    return language == "ar" if eastern is None else eastern and language == "ar"


# --- numbers -------------------------------------------------------------------------------------------

def digits(value: object, language: str, *, eastern: bool | None = None) -> str:
    """Eastern Arabic digits (and ٪) in Arabic; unchanged in English. Other characters are kept."""
    text = "" if value is None else str(value)
    return text.translate(_EASTERN_DIGITS) if _eastern(language, eastern) else text


def number(value: float | int | None, language: str, decimals: int = 0, *, signed: bool = False,
           eastern: bool | None = None) -> str:
    """`1٬234٫5` / `1,234.5`; `signed` shows the sign of a change (`+3`); None is a dash."""
    if value is None:
        return "—"
    text = f"{value:{'+' if signed else ''},.{decimals}f}"
    return text.translate(_EASTERN_NUMBER) if _eastern(language, eastern) else text


def percent(fraction: float | None, language: str, *, eastern: bool | None = None) -> str:
    """A fraction as a whole percentage: `٥٠٪` / `50%`."""
    if fraction is None:
        return "—"
    return number(fraction * 100, language, eastern=eastern) + ("٪" if _eastern(language, eastern) else "%")


# --- names ---------------------------------------------------------------------------------------------

def hijri_month(month: int, language: str) -> str:
    return HIJRI_MONTHS[language][month - 1]


def gregorian_month(month: int, language: str) -> str:
    return GREGORIAN_MONTHS[language][month - 1]


def weekday(day: date, language: str) -> str:
    return WEEKDAYS[language][day.weekday()]


# --- dates and moments ---------------------------------------------------------------------------------

def local(moment: datetime, zone: ZoneInfo = RIYADH) -> datetime:
    """A moment in `zone` (Asia/Riyadh); a naive one is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(zone)


def hijri_text(day: date | HijriDate, language: str, *, eastern: bool | None = None) -> str:
    """"٣ ذو الحجة ١٤٤٧هـ" / "3 Dhu al-Hijjah 1447 AH"; InvalidInput outside 1343-1500 AH."""
    hijri = day if isinstance(day, HijriDate) else HijriDate.of(day)
    month = hijri_month(hijri.month, language)
    if language == "ar":
        return digits(f"{hijri.day} {month} {hijri.year}هـ", language, eastern=eastern)
    return f"{hijri.day} {month} {hijri.year} AH"


def gregorian_text(day: date, language: str, *, eastern: bool | None = None) -> str:
    """"٢٠ مايو ٢٠٢٦م" / "20 May 2026"."""
    month = gregorian_month(day.month, language)
    if language == "ar":
        return digits(f"{day.day} {month} {day.year}م", language, eastern=eastern)
    return f"{day.day} {month} {day.year}"


def clock_text(moment: datetime, language: str, *, zone: ZoneInfo = RIYADH, eastern: bool | None = None) -> str:
    """The local time of day, "٠٩:٠٠" / "09:00"."""
    return digits(f"{local(moment, zone):%H:%M}", language, eastern=eastern)


def hijri_or_none(day: date) -> HijriDate | None:
    """The Hijri date of `day`, or None outside the Umm al-Qura table (1343-1500 AH)."""
    try:
        return HijriDate.of(day)
    except InvalidInput:
        return None


def long_date(day: date, language: str, *, with_weekday: bool = True, eastern: bool | None = None) -> str:
    """"الأربعاء ٣ ذو الحجة ١٤٤٧هـ الموافق ٢٠ مايو ٢٠٢٦م" / "Wednesday 3 Dhu al-Hijjah 1447 AH (20 May 2026)";
    outside the Umm al-Qura table, the weekday and the Gregorian date."""
    gregorian = gregorian_text(day, language, eastern=eastern)
    named = f"{weekday(day, language)} " if with_weekday else ""
    hijri_day = hijri_or_none(day)
    if hijri_day is None:
        return f"{named}{gregorian}"
    hijri = hijri_text(hijri_day, language, eastern=eastern)
    if language == "ar":
        return f"{named}{hijri} {_WORDS['corresponding'][0]} {gregorian}"
    return f"{named}{hijri} ({gregorian})"


def short_date(day: date, language: str, *, eastern: bool | None = None) -> str:
    """"٣ ذو الحجة ١٤٤٧هـ (٢٠ مايو ٢٠٢٦م)" / "3 Dhu al-Hijjah 1447 AH (20 May 2026)": for subjects and titles."""
    gregorian = gregorian_text(day, language, eastern=eastern)
    hijri = hijri_or_none(day)
    if hijri is None:
        return gregorian
    return f"{hijri_text(hijri, language, eastern=eastern)} ({gregorian})"


def zone_label(zone: ZoneInfo, language: str) -> str:
    if zone.key == "Asia/Riyadh":
        return _WORDS["riyadh_time"][0 if language == "ar" else 1]
    return f"({zone.key})"


def long_moment(moment: datetime, language: str, *, zone: ZoneInfo = RIYADH, eastern: bool | None = None) -> str:
    """The long date of `moment`'s local day and its time: "... الموافق ٢٠ مايو ٢٠٢٦م، الساعة ٠٩:٠٠ بتوقيت
    الرياض" / "... (20 May 2026), 09:00 Riyadh time"."""
    day = local(moment, zone).date()
    text, at = long_date(day, language, eastern=eastern), clock_text(moment, language, zone=zone, eastern=eastern)
    if language == "ar":
        return f"{text}، {_WORDS['at'][0]} {at} {zone_label(zone, language)}"
    return f"{text}, {at} {zone_label(zone, language)}"
