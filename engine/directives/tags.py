"""Tags (وسوم): the words that name an obstacle on directives and on pilgrim feedback.

Both normalise tags here (`clean_tags`), so the same word typed on a directive and on a feedback item is
the same tag; `TAG_NAMES` gives the unit's common tags their names in Arabic and English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.foundation.errors import N_, InvalidInput

# One word of letters, digits, - or _.
TAG_PATTERN = re.compile(r"^[\w\u0600-\u06FF][\w\u0600-\u06FF\-]{0,59}$")
MAX_TAGS = 20
# The unit's common tags in both languages (Arabic, English); a tag typed otherwise is shown as typed.
TAG_NAMES: dict[str, tuple[str, str]] = {
    "accessibility": ("سهولة الوصول", "Accessibility"),
    "bus_delay": ("تأخر الحافلات", "Bus delays"),
    "buses": ("الحافلات", "Buses"),
    "cleanliness": ("النظافة", "Cleanliness"),
    "congestion": ("الازدحام", "Congestion"),
    "daily_report": ("التقارير اليومية", "Daily reporting"),
    "data_integration": ("تكامل البيانات", "Data integration"),
    "dispatch": ("التفويج", "Dispatch"),
    "emergency": ("الطوارئ", "Emergencies"),
    "first_aid": ("الإسعافات الأولية", "First aid"),
    "forms": ("النماذج", "Forms"),
    "high_density": ("الكثافة العالية", "High density"),
    "housing": ("الإسكان", "Housing"),
    "housing_lists": ("كشوف السكن", "Housing lists"),
    "housing_permits": ("تصاريح السكن", "Housing permits"),
    "interpreters": ("المترجمون", "Interpreters"),
    "liaison": ("التنسيق والاتصال", "Liaison"),
    "maintenance": ("الصيانة", "Maintenance"),
    "occupancy": ("نسب الإشغال", "Occupancy"),
    "peak_capacity": ("الطاقة في الذروة", "Peak capacity"),
    "pilgrim_feedback": ("رأي الحاج", "Pilgrim feedback"),
    "readiness": ("الجاهزية", "Readiness"),
    "reception": ("الاستقبال", "Reception"),
    "recurring_obstacle": ("معوق متكرر", "Recurring obstacle"),
    "reporting_channel": ("قناة البلاغات", "Reporting channel"),
    "routes": ("المسارات", "Routes"),
    "safety": ("السلامة", "Safety"),
    "satisfaction": ("رضا الحجاج", "Satisfaction"),
    "signage": ("اللوحات الإرشادية", "Signage"),
    "statistics": ("الإحصاءات", "Statistics"),
    "training": ("التدريب", "Training"),
    "waiting_time": ("مدة الانتظار", "Waiting time"),
    "working_hours": ("ساعات العمل", "Working hours"),
}


def clean_tags(tags: Iterable[object]) -> list[str]:
    """Lower-case, spaces to `_`, each once, in the order given; at most 20. Refuses anything else."""
    if isinstance(tags, str | bytes):
        raise InvalidInput(N_("tags are a list of words"))
    cleaned: list[str] = []
    for tag in tags:
        value = str(tag).strip().lower().replace(" ", "_")
        if not TAG_PATTERN.match(value):
            raise InvalidInput(N_("a tag is one word of letters, digits, - or _: %(value)s"),
                               params={"value": repr(str(tag)[:80])})
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(N_("at most %(limit)s tags"), params={"limit": MAX_TAGS})
    return cleaned


def tag_name(tag: str, language: str) -> str:
    """A tag as people read it: its name in `language` when it is a common one, else as typed."""
    names = TAG_NAMES.get(tag)
    if names is None:
        return tag.replace("_", " ")
    return names[0] if language == "ar" else names[1]


def split_tags(text: str | None) -> list[str]:
    """Tags typed in one cell or field: separated by commas (, or ،), semicolons or new lines."""
    if not text:
        return []
    return [part.strip() for part in re.split(r"[,،;؛\n]+", str(text)) if part.strip()]
