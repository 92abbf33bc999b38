"""Languages of the web UI: Babel gettext catalogues (Arabic first, English second), loaded from the
`.po` files at start (no build step, no network), plus the filters templates need for numbers and dates.

Source strings (msgids) are English. `api/translations/ar/LC_MESSAGES/messages.po` holds Arabic with its
six plural forms; the English catalogue is empty (the msgids are the English text). Dates are always
shown in both calendars (Hijri Umm al-Qura, computed on the server with hijridate, and Gregorian), times
in Asia/Riyadh; Arabic pages use Eastern Arabic digits. The names, digits and separators are those of
`engine.calendar.formatting`, which emails and reports use too.
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

from engine.calendar import formatting
from engine.calendar.formatting import GREGORIAN_MONTHS as GREGORIAN_MONTHS  # the pages' and inputs.js's words
from engine.calendar.formatting import HIJRI_MONTHS as HIJRI_MONTHS
from engine.calendar.formatting import WEEKDAYS as WEEKDAYS
from engine.calendar.formatting import gregorian_text, hijri_text
from engine.foundation import clock

LANGUAGES = ("ar", "en")
DEFAULT_LANGUAGE = "ar"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


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
    return formatting.digits(value, language)


def number(value: float | int | None, language: str, decimals: int = 0) -> str:
    return formatting.number(value, language, decimals)


def percent(fraction: float | None, language: str) -> str:
    return formatting.percent(fraction, language)


def local(moment: datetime) -> datetime:
    return formatting.local(clock.as_utc(moment))


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

    e.g. "٣ ذو الحجة ١٤٤٧هـ (٢٠ مايو ٢٠٢٦م)، ٠٩:٠٠" / "3 Dhu al-Hijjah 1447 AH (20 May 2026), 09:00"; the
    words and digits are `engine.calendar.formatting`'s, as in emails and reports.
    """
    value = _parsed(value)
    if value is None:
        return Markup("—")
    day, clock_text = _day(value)
    hijri_day = formatting.hijri_or_none(day)
    hijri = hijri_text(hijri_day, language) if hijri_day is not None else ""  # else the Gregorian date alone
    parts = []
    if weekday:
        parts.append(f'<span class="weekday">{escape(formatting.weekday(day, language))}</span> ')
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
