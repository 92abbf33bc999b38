"""Languages of the web UI: Babel gettext catalogues (Arabic first, English second), loaded from the
`.po` files at start (no build step, no network), plus the filters templates need for numbers and dates.

Source strings (msgids) are English. `api/translations/ar/LC_MESSAGES/messages.po` holds Arabic with its
six plural forms; the English catalogue is empty (the msgids are the English text). Dates are always
shown in both calendars (Hijri Umm al-Qura, computed on the server with hijridate, and Gregorian), times
in Asia/Riyadh; Arabic pages use Eastern Arabic digits.
"""

from __future__ import annotations

import gettext
import io
from datetime import date, datetime
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from markupsafe import Markup, escape

from engine.calendar.durations import RIYADH
from engine.foundation import clock
from engine.reports.common import HijriDate

LANGUAGES = ("ar", "en")
DEFAULT_LANGUAGE = "ar"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
_EASTERN = str.maketrans("0123456789%", "٠١٢٣٤٥٦٧٨٩٪")
HIJRI_MONTHS = {
    "ar": ("محرم", "صفر", "ربيع الأول", "ربيع الآخر", "جمادى الأولى", "جمادى الآخرة", "رجب", "شعبان", "رمضان",
           "شوال", "ذو القعدة", "ذو الحجة"),
    "en": ("Muharram", "Safar", "Rabi' al-Awwal", "Rabi' al-Thani", "Jumada al-Ula", "Jumada al-Akhirah", "Rajab",
           "Sha'ban", "Ramadan", "Shawwal", "Dhu al-Qa'dah", "Dhu al-Hijjah"),
}
GREGORIAN_MONTHS = {
    "ar": ("يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر",
           "ديسمبر"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
WEEKDAYS = {
    "ar": ("الإثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of `language`, compiled in memory from its .po file (NullTranslations for English)."""
    path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    if language not in LANGUAGES or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def pick_language(*candidates: str | None) -> str:
    for candidate in candidates:
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def direction(language: str) -> str:
    return "rtl" if language == "ar" else "ltr"


def digits(value: object, language: str) -> str:
    """Eastern Arabic digits in Arabic; unchanged in English."""
    text = "" if value is None else str(value)
    return text.translate(_EASTERN) if language == "ar" else text


def number(value: float | int | None, language: str, decimals: int = 0) -> str:
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}"
    if language == "ar":
        text = text.replace(",", "٬").replace(".", "٫")
    return digits(text, language)


def percent(fraction: float | None, language: str) -> str:
    if fraction is None:
        return "—"
    return digits(f"{fraction * 100:.0f}%", language)


def local(moment: datetime) -> datetime:
    return clock.as_utc(moment).astimezone(RIYADH)


def hijri_text(day: date, language: str) -> str:
    hijri = HijriDate.of(day)
    month = HIJRI_MONTHS[language][hijri.month - 1]
    if language == "ar":
        return digits(f"{hijri.day} {month} {hijri.year}هـ", language)
    return f"{hijri.day} {month} {hijri.year} AH"


def gregorian_text(day: date, language: str) -> str:
    month = GREGORIAN_MONTHS[language][day.month - 1]
    if language == "ar":
        return digits(f"{day.day} {month} {day.year}م", language)
    return f"{day.day} {month} {day.year}"


def _day(value: date | datetime) -> tuple[date, str | None]:
    if isinstance(value, datetime):
        moment = local(value)
        return moment.date(), f"{moment:%H:%M}"
    return value, None


def _parsed(value: object) -> date | datetime | None:
    """Dates and moments as they are; ISO text (as audit payloads keep them) parsed; anything else None."""
    if isinstance(value, date | datetime):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def both_calendars(value: object, language: str, *, with_time: bool = True,
                   weekday: bool = False) -> Markup:
    """A `<time>` element: the Hijri date, then the Gregorian one, then the Riyadh time.

    e.g. "٣ ذو الحجة ١٤٤٧هـ · ٢٠ مايو ٢٠٢٦م · ٠٩:٠٠" / "3 Dhu al-Hijjah 1447 AH · 20 May 2026 · 09:00".
    """
    value = _parsed(value)
    if value is None:
        return Markup("—")
    day, clock_text = _day(value)
    try:
        hijri = hijri_text(day, language)
    except Exception:  # outside the Umm al-Qura table: the Gregorian date alone
        hijri = ""
    parts = []
    if weekday:
        parts.append(f'<span class="weekday">{escape(WEEKDAYS[language][day.weekday()])}</span> ')
    gregorian = escape(gregorian_text(day, language))
    if hijri:
        parts.append(f'<span class="hijri">{escape(hijri)}</span> <span class="gregorian">({gregorian})</span>')
    else:
        parts.append(f'<span class="gregorian">{gregorian}</span>')
    if with_time and clock_text:
        parts.append(f'{"،" if language == "ar" else ","} <span class="clock" dir="ltr">'
                     f'{escape(digits(clock_text, language))}</span>')
    iso = clock.as_utc(value).isoformat() if isinstance(value, datetime) else value.isoformat()
    return Markup(f'<time class="dates" datetime="{escape(iso)}">{"".join(parts)}</time>')


def plain_both_calendars(value: object, language: str) -> str:
    """The same as text (for CSV and titles)."""
    value = _parsed(value)
    if value is None:
        return ""
    day, clock_text = _day(value)
    text = f"{hijri_text(day, language)} / {gregorian_text(day, language)}"
    return f"{text} {digits(clock_text, language)}" if clock_text else text


def duration_hours(hours: float | None, language: str) -> str:
    if hours is None:
        return "—"
    return number(hours, language, 1)
