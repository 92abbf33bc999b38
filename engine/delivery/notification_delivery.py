"""Notification delivery: fan-out to users, email over SMTP with retries, the in-app inbox, templates
in Arabic and English, and the daily digest of each entity's open steps.

How a notification travels
--------------------------
1. A process step (the BPMN `notify` operation, or `daily_digest`) writes a `Notification` row with
   status "pending" in the same transaction as the step: nothing is sent for a step that rolled back.
2. `fan_out` turns each pending notification into one `Delivery` per recipient user and channel:
   "in_app" for every recipient (visible in `inbox` at once, status "sent" until read) and "email"
   for recipients with an address (status "pending", due now). The notification becomes
   "fanned_out", or "no_recipients" when no active user matches (kept visible for an administrator).
   Recipients: `recipient_role` and `recipient_entity` together mean users of that role in that
   entity; a role alone means every active user of that role; an entity alone means that entity's
   entity users.
3. `deliver_due` sends due email deliveries in batches over SMTP.

Exactly who sends what (several workers, crashes)
--------------------------------------------------
A batch is *claimed* in one short transaction: the due rows are selected with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (on SQLite the transaction holds the database write lock,
`BEGIN IMMEDIATE`), their `attempts` is incremented and their `next_attempt_at` moved one lease
ahead (`lease_seconds`). Another worker's query no longer finds them, so two workers never send the
same delivery. The SMTP conversation then runs outside any transaction (no database lock is held
while a mail server is slow), and each result is committed in its own small transaction *after*
the server accepted or refused the message. That update is fenced on the claimed `attempts`
value, so a worker whose lease ran out cannot overwrite a newer claim; a worker stops sending and
hands back the rest of its batch once half of the lease has passed.

The choice is **at-least-once**: a crash (or a lost database) between the server's "250 OK" and
the commit leaves the delivery pending; once the lease expires another run sends it again. Each
message carries a Message-ID derived from the delivery id, so a repeat has the same Message-ID
and most mail systems show it once. A delivery is never lost: its status changes only after the
server answered.

Retries: a temporary failure (4xx reply, connection refused or dropped, timeout) is retried after
`backoff_base_seconds * 2**(attempts-1)` (1, 2, 4, ... minutes by default), capped at
`backoff_max_seconds`; after `max_attempts` attempts the delivery is "failed" with `last_error`.
A permanent refusal of the message (5xx to the recipient or the data) fails it at once.
`requeue_failed` puts failed deliveries back in the queue after the cause was fixed.

Templates
---------
Each template has a subject and a plain-text body per language (Jinja2, kept in this module so they
ship with the package), and an HTML alternative built from the text (`dir="rtl"` for Arabic). The
language is the recipient's. An unknown template key falls back to a generic message naming it.
Dates are shown in the Umm al-Qura Hijri calendar and the Gregorian one, times in Asia/Riyadh.

Template context: the notification's payload (its own keys, and as `payload`), completed from the
process instance when the payload lacks them:
`reference` and `title` (the directive run by the instance), `step` (the instance's open step for
the recipient entity, else its first open step), `due` (that step's due moment, else the
directive's), `entity_name` (payload `entity`, else the recipient entity, else the directive's
responsible entity). Per template: `escalation` reads `level`, `reason`, `note`; `submitted` and
`returned_for_rework` read `comment`; `extension_decided` reads `decision` ("granted"/"refused")
and `new_due`; `daily_digest` reads `day`, `items`, `open_count`, `overdue_count`, `more`.
"""

from __future__ import annotations

import contextlib
import re
import signal
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, Template
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.calendar import formatting
from engine.directives import access
from engine.directives.directives import Directive
from engine.foundation import clock
from engine.foundation.errors import N_, NotFound
from engine.foundation.logs import get_logger
from engine.foundation.settings import get_settings
from engine.people.entities import Entity
from engine.people.roles import ENTITY_USER
from engine.people.users import User, users_for
from engine.storage.db import Database, rowcount
from engine.work.instances import ProcessInstance
from engine.work.notifications import Delivery, Notification
from engine.work.work_items import OPEN, WorkItem

log = get_logger(__name__)

RIYADH = ZoneInfo("Asia/Riyadh")

# Notification statuses (the `notify` operation writes "pending").
PENDING_NOTIFICATION, FANNED_OUT, NO_RECIPIENTS = "pending", "fanned_out", "no_recipients"
# Channels and delivery statuses.
EMAIL, IN_APP = "email", "in_app"
PENDING, SENT, FAILED, READ = "pending", "sent", "failed", "read"

TEMPLATE_KEYS = ("reminder", "escalation", "submitted", "returned_for_rework", "extension_decided", "assigned",
                 "daily_digest")
DIGEST_MAX_ITEMS = 100


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------

class SmtpSettings(BaseSettings):
    """Email delivery, read from `TANSIQ_SMTP_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TANSIQ_SMTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = Field(
        default="none", description="none, starttls (upgrade a plain connection) or tls (implicit TLS, port 465).")
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(default="tansiq@localhost", description="The From and envelope sender address.")
    sender_name: str = "Tansiq"
    timeout: float = Field(default=30.0, gt=0, description="Seconds for connecting and for each SMTP command.")
    ca_file: Path | None = Field(default=None, description="CA bundle to trust (a relay with its own CA).")
    local_hostname: str | None = Field(default=None, description="The name sent in EHLO; the FQDN if unset.")
    batch_size: int = Field(default=50, ge=1, le=1000)
    poll_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_base_seconds: int = Field(default=60, ge=1)
    backoff_max_seconds: int = Field(default=3600, ge=1)
    lease_seconds: int = Field(default=600, ge=10, description="How long a claimed batch is reserved for its worker.")

    @model_validator(mode="after")
    def _check(self) -> SmtpSettings:
        if self.username and self.security == "none" and not _is_loopback(self.host):
            raise ValueError("SMTP credentials are sent only over TLS: set TANSIQ_SMTP_SECURITY to starttls or tls")
        if self.lease_seconds < 4 * self.timeout:
            raise ValueError("TANSIQ_SMTP_LEASE_SECONDS must be at least 4 times TANSIQ_SMTP_TIMEOUT")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_smtp_settings() -> SmtpSettings:
    return SmtpSettings()


# --------------------------------------------------------------------------------------------------
# Fan-out
# --------------------------------------------------------------------------------------------------

@dataclass
class FanOutResult:
    notifications: int = 0
    deliveries: int = 0
    without_recipients: list[int] = field(default_factory=list)


def recipients(session: Session, notification: Notification) -> list[User]:
    """The active users a notification is addressed to (see the module's docstring)."""
    role = notification.recipient_role
    if role is None and notification.recipient_entity is not None:
        role = ENTITY_USER
    if role is None:
        return []
    return users_for(session, role=role, entity_code=notification.recipient_entity)


def fan_out(session: Session, *, limit: int = 500) -> FanOutResult:
    """Create the deliveries of up to `limit` pending notifications. Idempotent; run it in a write
    transaction (on PostgreSQL the notifications are locked, so concurrent runs share the work)."""
    result = FanOutResult()
    query = (select(Notification).where(Notification.status == PENDING_NOTIFICATION)
             .order_by(Notification.id).limit(limit))
    if _is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    now = clock.now()
    for notification in session.scalars(query).all():
        existing = {tuple(row) for row in session.execute(
            select(Delivery.user_id, Delivery.channel).where(Delivery.notification_id == notification.id)
        )}
        users = recipients(session, notification)
        for user in users:
            channels = [IN_APP] + ([EMAIL] if user.email else [])
            for channel in channels:
                if (user.id, channel) in existing:
                    continue
                session.add(Delivery(
                    notification_id=notification.id, user_id=user.id, channel=channel, language=user.language,
                    status=SENT if channel == IN_APP else PENDING, attempts=0,
                    next_attempt_at=now if channel == EMAIL else None,
                    sent_at=now if channel == IN_APP else None,
                ))
                result.deliveries += 1
        if users:
            notification.status = FANNED_OUT
        else:
            notification.status = NO_RECIPIENTS
            result.without_recipients.append(notification.id)
            log.warning("notification has no recipients", notification=notification.id,
                        role=notification.recipient_role, entity=notification.recipient_entity)
        result.notifications += 1
    session.flush()
    return result


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --------------------------------------------------------------------------------------------------
# Dates: Hijri (Umm al-Qura) and Gregorian, times in Asia/Riyadh
# --------------------------------------------------------------------------------------------------

def _as_moment(value: Any) -> datetime | date | None:
    if isinstance(value, datetime):
        return clock.as_utc(value).astimezone(RIYADH)
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return clock.as_utc(datetime.fromisoformat(text)).astimezone(RIYADH)
        except ValueError:
            return None
    return None


def _figure(value: Any, language: str) -> Any:
    """A count or level written into an email in the email's digits (Eastern Arabic in Arabic)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return formatting.number(value, language)
    if isinstance(value, float):  # as given (a payload's figure): only the digits and the decimal sign change
        text = formatting.digits(repr(value), language)
        return text.replace(".", "٫") if language == "ar" else text
    return value


def format_date(value: Any, language: str, *, with_time: bool = True, compact: bool = False) -> str:
    """A moment in both calendars, in `engine.calendar.formatting`'s words and digits (as on pages and in
    reports), e.g. "الاثنين ١٥ ذو الحجة ١٤٤٧هـ الموافق ١ يونيو ٢٠٢٦م، الساعة ١٤:٠٠ بتوقيت الرياض" or "Monday 15
    Dhu al-Hijjah 1447 AH (1 June 2026), 14:00 Riyadh time"; `compact` (for subjects) gives
    "١٥ ذو الحجة ١٤٤٧هـ (١ يونيو ٢٠٢٦م) ١٤:٠٠". Anything else is returned as text."""
    moment = _as_moment(value)
    if moment is None:
        return "" if value is None else str(value)
    timed = moment if with_time and isinstance(moment, datetime) else None
    day = moment.date() if isinstance(moment, datetime) else moment
    if compact:
        text = formatting.short_date(day, language)
        return f"{text} {formatting.clock_text(timed, language)}" if timed else text
    if timed:
        return formatting.long_moment(timed, language)
    return formatting.long_date(day, language)


# --------------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------------

_BASE = {
    "ar": """السلام عليكم {{ user_name }}،

{% block body %}{% endblock %}


{% block details %}
{% if reference or title %}• التوجيه: {{ reference }}{% if reference and title %} — {% endif %}{{ title }}
{% endif %}
{% if step %}• المهمة: {{ step }}
{% endif %}
{% if entity_name %}• الجهة: {{ entity_name }}
{% endif %}
{% if due %}• الموعد النهائي: {{ due|when }}
{% endif %}
{% endblock %}
{% if link %}

افتحها في تنسيق: {{ link }}
{% endif %}

--
وحدة المتابعة وتنسيق عمليات الحج (تنسيق)
هذه رسالة آلية، يرجى عدم الرد عليها.
""",
    "en": """Dear {{ user_name }},

{% block body %}{% endblock %}


{% block details %}
{% if reference or title %}• Directive: {{ reference }}{% if reference and title %} — {% endif %}{{ title }}
{% endif %}
{% if step %}• Step: {{ step }}
{% endif %}
{% if entity_name %}• Entity: {{ entity_name }}
{% endif %}
{% if due %}• Deadline: {{ due|when }}
{% endif %}
{% endblock %}
{% if link %}

Open it in Tansiq: {{ link }}
{% endif %}

--
Hajj Operations Follow-up and Coordination Unit (Tansiq)
This is an automated message; please do not reply.
""",
}

# template key -> language -> (subject, body block)
_TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "reminder": {
        "ar": (
            "تذكير: {% if reference %}التوجيه {{ reference }} — {% endif %}"
            "{% if due %}الموعد النهائي {{ due|short }}{% else %}اقتراب الموعد النهائي{% endif %}",
            "نذكّركم باقتراب الموعد النهائي{% if step %} للمهمة «{{ step }}»{% endif %}"
            "{% if title %} ضمن التوجيه «{{ title }}»{% endif %}{% if due %}، وهو {{ due|when }}{% endif %}.\n"
            "يرجى إنجازها قبل الموعد، أو طلب تمديد إن تعذّر ذلك.",
        ),
        "en": (
            "Reminder: {% if reference %}directive {{ reference }} — {% endif %}"
            "{% if due %}due {{ due|short }}{% else %}deadline approaching{% endif %}",
            "This is a reminder that the deadline{% if step %} of the step “{{ step }}”{% endif %}"
            "{% if title %} of the directive “{{ title }}”{% endif %} is approaching{% if due %}: {{ due|when }}"
            "{% endif %}.\nPlease complete it in time, or ask for an extension if you cannot.",
        ),
    },
    "escalation": {
        "ar": (
            "تصعيد من المستوى {{ level or 1 }}{% if reference %}: التوجيه {{ reference }}{% endif %}",
            "رُفع إليكم تصعيد من المستوى {{ level or 1 }}{% if title %} بشأن التوجيه «{{ title }}»{% endif %}"
            "{% if reason %}، والسبب: {{ reason|reason }}{% endif %}.\n"
            "{% if note %}ملاحظة: {{ note }}\n{% endif %}"
            "يرجى مراجعته واتخاذ ما يلزم: تمديد الموعد، أو إعادة الإسناد، أو التصعيد، أو الإغلاق.",
        ),
        "en": (
            "Escalation, level {{ level or 1 }}{% if reference %}: directive {{ reference }}{% endif %}",
            "An escalation of level {{ level or 1 }} was raised to you{% if title %} about the directive "
            "“{{ title }}”{% endif %}{% if reason %}. Reason: {{ reason|reason }}{% endif %}.\n"
            "{% if note %}Note: {{ note }}\n{% endif %}"
            "Please review it and act: extend the deadline, reassign, escalate further or close.",
        ),
    },
    "submitted": {
        "ar": (
            "بانتظار التحقق: {% if reference %}التوجيه {{ reference }}{% else %}{{ step }}{% endif %}",
            "قدّمت {% if entity_name %}الجهة «{{ entity_name }}»{% else %}الجهة المسؤولة{% endif %} ما أنجزته"
            "{% if step %} في المهمة «{{ step }}»{% endif %}"
            "{% if title %} ضمن التوجيه «{{ title }}»{% endif %}، وهو بانتظار تحققكم.\n"
            "{% if comment %}ملاحظة الجهة: {{ comment }}\n{% endif %}"
            "يرجى مراجعة شواهد الإنجاز ثم اعتمادها أو إعادتها للاستكمال.",
        ),
        "en": (
            "Awaiting verification: {% if reference %}directive {{ reference }}{% else %}{{ step }}{% endif %}",
            "{{ entity_name or 'The responsible entity' }} submitted its work{% if step %} on the step “{{ step }}”"
            "{% endif %}{% if title %} of the directive “{{ title }}”{% endif %}; it awaits your verification.\n"
            "{% if comment %}The entity's note: {{ comment }}\n{% endif %}"
            "Please review the completion evidence, then accept it or return it for rework.",
        ),
    },
    "returned_for_rework": {
        "ar": (
            "أُعيد للاستكمال: {% if reference %}التوجيه {{ reference }}{% else %}{{ step }}{% endif %}",
            "أُعيدت إليكم{% if step %} المهمة «{{ step }}»{% else %} المهمة{% endif %}"
            "{% if title %} ضمن التوجيه «{{ title }}»{% endif %} للاستكمال.\n"
            "{% if comment %}ملاحظات مسؤول المتابعة: {{ comment }}\n{% endif %}"
            "يرجى استكمال المطلوب وإعادة التقديم{% if due %} قبل {{ due|when }}{% endif %}.",
        ),
        "en": (
            "Returned for rework: {% if reference %}directive {{ reference }}{% else %}{{ step }}{% endif %}",
            "The step{% if step %} “{{ step }}”{% endif %}{% if title %} of the directive “{{ title }}”{% endif %}"
            " was returned to you for rework.\n"
            "{% if comment %}The follow-up officer's notes: {{ comment }}\n{% endif %}"
            "Please complete what is asked and submit again{% if due %} before {{ due|when }}{% endif %}.",
        ),
    },
    "extension_decided": {
        "ar": (
            "{% if granted %}تمت الموافقة على طلب التمديد{% else %}رُفض طلب التمديد{% endif %}"
            "{% if reference %}: التوجيه {{ reference }}{% endif %}",
            "{% if granted %}تمت الموافقة على طلب تمديد{% else %}رُفض طلب تمديد{% endif %}"
            "{% if step %} المهمة «{{ step }}»{% else %} الموعد{% endif %}{% if title %} ضمن التوجيه «{{ title }}»"
            "{% endif %}.\n{% if granted and due %}الموعد النهائي الجديد: {{ due|when }}.\n"
            "{% elif due %}يبقى الموعد النهائي {{ due|when }}.\n{% endif %}"
            "{% if comment %}ملاحظة المشرف: {{ comment }}\n{% endif %}",
        ),
        "en": (
            "Extension {% if granted %}granted{% else %}refused{% endif %}"
            "{% if reference %}: directive {{ reference }}{% endif %}",
            "Your request for more time{% if step %} on the step “{{ step }}”{% endif %}"
            "{% if title %} of the directive “{{ title }}”{% endif %} was {% if granted %}granted{% else %}refused"
            "{% endif %}.\n{% if granted and due %}The new deadline: {{ due|when }}.\n"
            "{% elif due %}The deadline stays {{ due|when }}.\n{% endif %}"
            "{% if comment %}The supervisor's note: {{ comment }}\n{% endif %}",
        ),
    },
    "assigned": {
        "ar": (
            "مهمة جديدة{% if step %}: {{ step }}{% endif %}{% if reference %} — التوجيه {{ reference }}{% endif %}",
            "أُسندت إليكم مهمة جديدة{% if step %} «{{ step }}»{% endif %}{% if title %} ضمن التوجيه «{{ title }}»"
            "{% endif %}{% if due %}، وموعدها النهائي {{ due|when }}{% endif %}.\n"
            "يرجى الإقرار بالاستلام، ثم تقديم خطة العمل ونسبة الإنجاز عبر تنسيق.",
        ),
        "en": (
            "New step{% if step %}: {{ step }}{% endif %}{% if reference %} — directive {{ reference }}{% endif %}",
            "A new step{% if step %} “{{ step }}”{% endif %} was assigned to you{% if title %} under the directive "
            "“{{ title }}”{% endif %}{% if due %}; it is due {{ due|when }}{% endif %}.\n"
            "Please acknowledge it, then submit your action plan and progress in Tansiq.",
        ),
    },
    "daily_digest": {
        "ar": (
            "الملخص اليومي — {{ entity_name }} — {{ day|day_short }}: "
            "المهام المفتوحة {{ open_count }}، المتأخرة {{ overdue_count }}",
            "فيما يلي المهام المفتوحة لدى {{ entity_name }} يوم {{ day|day }}.\n"
            "المهام المفتوحة: {{ open_count }} — المتأخرة منها: {{ overdue_count }}\n\n"
            "{% for item in items %}• {{ item|localized('name') }}"
            "{% if item.reference %} (التوجيه {{ item.reference }}){% endif %} — الموعد النهائي: "
            "{% if item.due %}{{ item.due|when }}{% else %}غير محدد{% endif %}{% if item.overdue %} — متأخرة"
            "{% endif %}{{ '\\n' }}{% endfor %}"
            "{% if more %}\nمهام أخرى غير معروضة: {{ more }}\n{% endif %}"
            "{% if forecast %}\nالتصعيدات المتوقعة خلال الـ٢٤ ساعة القادمة: {{ forecast.escalations_24h }}"
            " (وخلال ٧٢ ساعة: {{ forecast.escalations_72h }})؛ ومن مهامكم المفتوحة {{ forecast.likely_misses }}"
            " مرجّح أن تتجاوز موعدها النهائي (باحتمال ٥٠٪ فأكثر).\n{% endif %}",
        ),
        "en": (
            "Daily digest — {{ entity_name }} — {{ day|day_short }}: {{ open_count }} open, "
            "{{ overdue_count }} overdue",
            "These are the open steps of {{ entity_name }} on {{ day|day }}.\n"
            "Open steps: {{ open_count }} — overdue: {{ overdue_count }}\n\n"
            "{% for item in items %}• {{ item|localized('name') }}"
            "{% if item.reference %} (directive {{ item.reference }}){% endif %} — deadline: "
            "{% if item.due %}{{ item.due|when }}{% else %}none{% endif %}{% if item.overdue %} — OVERDUE"
            "{% endif %}{{ '\\n' }}{% endfor %}"
            "{% if more %}\nMore steps not listed: {{ more }}\n{% endif %}"
            "{% if forecast %}{% set n, m, k = forecast.escalations_24h, forecast.escalations_72h, "
            "forecast.likely_misses %}\n{{ n }} escalation{{ '' if n == 1 else 's' }} expected in the next 24 hours"
            " ({{ m }} in 72 hours); {{ k }} of your open steps {{ 'is' if k == 1 else 'are' }} likely to miss"
            " {{ 'its' if k == 1 else 'their' }} due moment (probability ≥ 50 %).\n{% endif %}",
        ),
    },
}

_GENERIC = {
    "ar": (
        "إشعار من تنسيق: {{ template }}{% if reference %} — التوجيه {{ reference }}{% endif %}",
        "لديكم إشعار جديد من نوع «{{ template }}».\n\n"
        "{% for key, value in payload|dictsort %}• {{ key }}: {{ value }}\n{% endfor %}",
    ),
    "en": (
        "Tansiq notification: {{ template }}{% if reference %} — directive {{ reference }}{% endif %}",
        "You have a new notification of type “{{ template }}”.\n\n"
        "{% for key, value in payload|dictsort %}• {{ key }}: {{ value }}\n{% endfor %}",
    ),
}

_NO_DETAILS = {"daily_digest"}  # the digest lists its own steps

_HTML = """<!DOCTYPE html>
<html lang="{{ lang }}" dir="{{ direction }}">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body dir="{{ direction }}" style="font-family: Tahoma, Arial, sans-serif; font-size: 15px; line-height: 1.6; \
direction: {{ direction }}; text-align: {{ 'right' if direction == 'rtl' else 'left' }};">
{% for block in blocks %}
{% if block.kind == 'list' %}<ul>{% for line in block.lines %}<li>{{ line }}</li>{% endfor %}</ul>
{% elif block.kind == 'rule' %}<hr>
{% elif block.kind == 'link' %}<p>{{ block.lines[0] }}<a href="{{ block.lines[1] }}">{{ block.lines[1] }}</a></p>
{% else %}<p>{% for line in block.lines %}{{ line }}{% if not loop.last %}<br>{% endif %}{% endfor %}</p>
{% endif %}
{% endfor %}
</body>
</html>
"""

_REASONS = {
    "ar": {"overdue": "تجاوز الموعد النهائي", "unacknowledged": "عدم الإقرار بالاستلام في الموعد",
           "loop_cap": "تكرار الإعادة للاستكمال أكثر من الحد المسموح", "manual": "تصعيد يدوي"},
    "en": {"overdue": "the deadline passed", "unacknowledged": "not acknowledged in time",
           "loop_cap": "returned for rework too many times", "manual": "raised manually"},
}
_GRANTED = {"granted", "approved", "accepted", "extended", "yes", "true"}


@dataclass(frozen=True)
class RenderedMessage:
    language: str
    subject: str
    text: str
    html: str


def _template_sources() -> dict[str, str]:
    sources: dict[str, str] = {}
    for language, base in _BASE.items():
        sources[f"{language}/_base"] = base
        for key, languages in [*_TEMPLATES.items(), ("_generic", _GENERIC)]:
            subject, body = languages[language]
            sources[f"{language}/{key}.subject"] = subject
            details = "{% block details %}{% endblock %}" if key in _NO_DETAILS else ""
            sources[f"{language}/{key}.text"] = (
                f'{{% extends "{language}/_base" %}}{{% block body %}}{body}{{% endblock %}}{details}'
            )
    return sources


@lru_cache(maxsize=4)
def _environment(language: str) -> Environment:
    env = Environment(loader=DictLoader(_template_sources()), autoescape=False, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True,
                      finalize=lambda value: _figure(value, language))
    env.filters["when"] = lambda value: format_date(value, language)
    env.filters["day"] = lambda value: format_date(value, language, with_time=False)
    env.filters["short"] = lambda value: format_date(value, language, compact=True)
    env.filters["day_short"] = lambda value: format_date(value, language, with_time=False, compact=True)
    env.filters["reason"] = lambda value: _REASONS[language].get(str(value), str(value))
    env.filters["localized"] = lambda item, name: _localized(item, name, language)
    return env


@lru_cache(maxsize=1)
def _html_template() -> Template:
    """Compiled once: compiling it for every message was a sixth of the delivery worker's CPU."""
    return Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(_HTML)


def _localized(item: Any, name: str, language: str) -> str:
    if not isinstance(item, dict):
        return str(item)
    return str(item.get(f"{name}_{language}") or item.get(name) or "")


def render(template: str, context: dict[str, Any], language: str) -> RenderedMessage:
    """Render a template in a language ("ar" or "en"); unknown keys use the generic template."""
    language = language if language in _BASE else "ar"
    key = template if template in _TEMPLATES else "_generic"
    env = _environment(language)
    values = {"template": template, "payload": {}, "lang": language, **context}
    if template == "extension_decided":
        values["granted"] = str(values.get("decision", "")).strip().lower() in _GRANTED
        if values["granted"] and values.get("new_due"):
            values["due"] = values["new_due"]
    try:
        subject = env.get_template(f"{language}/{key}.subject").render(values)
        text = env.get_template(f"{language}/{key}.text").render(values)
    except Exception:  # a payload a template cannot read must not block the message
        if key == "_generic":
            raise
        log.exception("notification template failed; using the generic one", template=template)
        subject = env.get_template(f"{language}/_generic.subject").render(values)
        text = env.get_template(f"{language}/_generic.text").render(values)
    subject = " ".join(subject.split())[:900]
    text = _tidy(text)
    return RenderedMessage(language, subject, text, _to_html(subject, text, language))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


_LINK_LINE = re.compile(r"^(.*: )(https?://[^\s<>\"']+)$")  # "Open it in Tansiq: https://..." (from link_for)


def _to_html(subject: str, text: str, language: str) -> str:
    blocks: list[dict[str, Any]] = []
    for paragraph in text.strip().split("\n\n"):
        lines = paragraph.splitlines()
        current: dict[str, Any] | None = None
        for line in lines:
            if line == "--":
                blocks.append({"kind": "rule", "lines": []})
                current = None
                continue
            link = _LINK_LINE.match(line)
            if link:
                blocks.append({"kind": "link", "lines": [link.group(1), link.group(2)]})
                current = None
                continue
            kind = "list" if line.startswith("• ") else "paragraph"
            if current is None or current["kind"] != kind:
                current = {"kind": kind, "lines": []}
                blocks.append(current)
            current["lines"].append(line[2:] if kind == "list" else line)
    direction = "rtl" if language == "ar" else "ltr"
    return _html_template().render(
        lang=language, direction=direction, subject=subject, blocks=blocks)


def template_context(session: Session, notification: Notification, user: User, language: str) -> dict[str, Any]:
    """What a template sees: the payload, completed from the directive and the open steps."""
    payload = dict(notification.payload or {})
    directive = None
    instance = None
    step_item: WorkItem | None = None
    if notification.instance_id is not None:
        directive = session.scalar(select(Directive).where(Directive.instance_id == notification.instance_id))
        instance = session.get(ProcessInstance, notification.instance_id)
        steps = list(session.scalars(
            select(WorkItem).where(WorkItem.instance_id == notification.instance_id, WorkItem.status == OPEN)
            .order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)
        ))
        entity_code = notification.recipient_entity
        mine = [s for s in steps if entity_code and s.assignee_entity == entity_code]
        first = mine or steps
        step_item = first[0] if first else None
    entity_code = payload.get("entity") or notification.recipient_entity
    entity_name = None
    if isinstance(entity_code, str):
        entity = session.scalar(select(Entity).where(Entity.code == entity_code))
        entity_name = (entity.name_ar if language == "ar" else entity.name_en) if entity else entity_code
    elif directive is not None:
        entity = directive.responsible_entity
        entity_name = entity.name_ar if language == "ar" else entity.name_en
    context: dict[str, Any] = {key: value for key, value in payload.items() if isinstance(key, str)}
    context.update(payload=payload, user_name=user.full_name or user.username, entity_name=entity_name)
    if not context.get("reference"):
        context["reference"] = directive.reference if directive else (instance.business_key if instance else None)
    if not context.get("title") and directive is not None:
        context["title"] = (directive.title if language == "ar" else directive.title_en or directive.title)
    if not context.get("step") and step_item is not None:
        context["step"] = (step_item.name_ar if language == "ar" else step_item.name_en) or step_item.name
    if not context.get("due"):
        context["due"] = (step_item.due_at if step_item else None) or (
            (directive.current_due_at or directive.deadline_at) if directive else None)
    context["link"] = link_for(directive.id if directive else None, step_item.id if step_item else None,
                               digest=notification.template == "daily_digest")
    return context


def link_for(directive_id: int | None, work_item_id: int | None, *, digest: bool = False) -> str | None:
    """Where the message's reader acts, at the address users see (TANSIQ_PUBLIC_URL; no link without it: a
    worker cannot know the address a proxy gives Tansiq). The entity's own step first, else the directive."""
    base = (get_settings().public_url or "").rstrip("/")
    if not base:
        return None
    if digest:
        return f"{base}/inbox"
    if work_item_id is not None:
        return f"{base}/steps/{work_item_id}"
    return f"{base}/directives/{directive_id}" if directive_id is not None else f"{base}/"


def render_notification(session: Session, notification: Notification, user: User, language: str) -> RenderedMessage:
    return render(notification.template, template_context(session, notification, user, language), language)


# --------------------------------------------------------------------------------------------------
# Email delivery
# --------------------------------------------------------------------------------------------------

@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0

    def add(self, other: DeliveryReport) -> None:
        for name in ("claimed", "sent", "retrying", "failed", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Claim:
    delivery_id: int
    attempt: int
    recipient: str
    message: Message | None
    error: str | None = None


class _Permanent(Exception):
    """The server refused this message for good (5xx): retrying would not help."""


def backoff(attempts: int, settings: SmtpSettings) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2*base, 4*base, ... capped."""
    seconds = settings.backoff_base_seconds * 2 ** max(0, min(attempts - 1, 30))
    return timedelta(seconds=min(seconds, settings.backoff_max_seconds))


def deliver_due(db: Database, settings: SmtpSettings | None = None, batch: int | None = None) -> DeliveryReport:
    """Claim up to `batch` due email deliveries and send them over one SMTP connection."""
    settings = settings or get_smtp_settings()
    report = DeliveryReport()
    claims = _claim(db, batch or settings.batch_size, settings)
    report.claimed = len(claims)
    started = time.monotonic()
    connection: smtplib.SMTP | None = None
    for claim in claims:
        if claim.message is None:
            _record(db, claim, settings, report, error=claim.error or "cannot build the message", permanent=True)
    sendable = [claim for claim in claims if claim.message is not None]
    try:
        for index, claim in enumerate(sendable):
            if time.monotonic() - started > settings.lease_seconds / 2:
                report.released += _release(db, sendable[index:])
                break
            if connection is None:
                try:
                    connection = _connect(settings)
                except (OSError, smtplib.SMTPException) as error:
                    text = f"cannot connect to {settings.host}:{settings.port}: {_describe(error)}"
                    for rest in sendable[index:]:
                        _record(db, rest, settings, report, error=text)
                    break
            try:
                _send(connection, claim, settings)
            except _Permanent as error:
                _record(db, claim, settings, report, error=str(error), permanent=True)
            except smtplib.SMTPResponseException as error:
                _record(db, claim, settings, report, error=_describe(error), permanent=False)
                _reset(connection)
            except (OSError, smtplib.SMTPException) as error:  # dropped, timed out: reconnect for the next one
                _record(db, claim, settings, report, error=_describe(error), permanent=False)
                _close(connection)
                connection = None
            except Exception as error:  # a bug must not stall the queue: retried like a temporary failure
                log.exception("unexpected error while sending", delivery=claim.delivery_id)
                _record(db, claim, settings, report, error=_describe(error), permanent=False)
                _close(connection)
                connection = None
            else:
                _record(db, claim, settings, report)
    finally:
        if connection is not None:
            _close(connection)
    if report.claimed:
        log.info("email deliveries", claimed=report.claimed, sent=report.sent, retrying=report.retrying,
                 failed=report.failed, released=report.released)
    return report


def _claim(db: Database, batch: int, settings: SmtpSettings) -> list[_Claim]:
    claims: list[_Claim] = []
    with db.transaction() as session:
        now = clock.now()
        query = (
            select(Delivery)
            .where(Delivery.channel == EMAIL, Delivery.status == PENDING, Delivery.next_attempt_at <= now)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(batch)
        )
        if db.is_postgresql:
            query = query.with_for_update(skip_locked=True, of=Delivery)
        deliveries = session.scalars(query).all()
        for delivery in deliveries:
            delivery.attempts += 1
            delivery.next_attempt_at = now + timedelta(seconds=settings.lease_seconds)
        session.flush()
        for delivery in deliveries:
            claims.append(_prepare(session, delivery, settings))
    return claims


def _prepare(session: Session, delivery: Delivery, settings: SmtpSettings) -> _Claim:
    user = session.get(User, delivery.user_id)
    notification = session.get(Notification, delivery.notification_id)
    claim = _Claim(delivery.id, delivery.attempts, (user.email or "") if user else "", None)
    if user is None or notification is None:
        claim.error = "the user or the notification is gone"
    elif not user.active:
        claim.error = "the user is inactive"
    elif not user.email:
        claim.error = "the user has no email address"
    else:
        try:
            rendered = render_notification(session, notification, user, delivery.language)
            claim.message = build_message(rendered, user, settings, message_id=_message_id(delivery, settings))
        except ValueError as error:  # a bad address
            claim.error = f"cannot build the message: {error}"
        except Exception as error:
            log.exception("cannot build an email", delivery=delivery.id)
            claim.error = f"cannot build the message: {error}"
    return claim


def build_message(rendered: RenderedMessage, user: User | None, settings: SmtpSettings, *,
                  to: str | None = None, message_id: str | None = None) -> Message:
    """A multipart/alternative message (plain text and HTML, UTF-8).

    Built with the compat32 API on purpose: `email.policy.default` folds a long non-ASCII subject
    into encoded words and puts the space between two of them outside both, so mail clients show
    Arabic subjects with words run together; `email.header.Header` keeps every space inside.
    """
    address = _checked_address(to or (user.email if user else None))
    message = MIMEMultipart("alternative")
    message["From"] = formataddr((_one_line(settings.sender_name), settings.sender), charset="utf-8")
    name = _one_line(user.full_name if user else "")
    message["To"] = formataddr((name, address), charset="utf-8") if name else address
    subject = Header(rendered.subject, "utf-8")
    message["Subject"] = subject  # type: ignore[assignment]  # typeshed takes str only; compat32 takes a Header
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = message_id or make_msgid("tansiq", domain=_domain(settings))
    message["Content-Language"] = rendered.language
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(rendered.text, "plain", "utf-8"))
    message.attach(MIMEText(rendered.html, "html", "utf-8"))
    return message


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _checked_address(address: str | None) -> str:
    if not address or not address.isascii() or any(c.isspace() for c in address):
        raise ValueError(f"not a deliverable ASCII email address: {address!r}")
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError, HeaderParseError) as error:
        raise ValueError(f"not a valid email address: {address!r}") from error
    if not parsed.domain:
        raise ValueError(f"an email address needs a domain: {address!r}")
    return parsed.addr_spec


def _message_id(delivery: Delivery, settings: SmtpSettings) -> str:
    return f"<tansiq.delivery.{delivery.id}.{delivery.notification_id}@{_domain(settings)}>"


def _domain(settings: SmtpSettings) -> str:
    return settings.sender.rsplit("@", 1)[-1] or "localhost"


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.security == "tls":
        connection: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, settings.local_hostname,
                                                    timeout=settings.timeout, context=_tls_context(settings))
    else:
        connection = smtplib.SMTP(settings.host, settings.port, settings.local_hostname, timeout=settings.timeout)
    try:
        connection.ehlo()
        if settings.security == "starttls":
            connection.starttls(context=_tls_context(settings))  # refuses to go on if the server does not offer it
            connection.ehlo()
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            connection.login(settings.username, password)
    except BaseException:
        _close(connection)
        raise
    return connection


def _send(connection: smtplib.SMTP, claim: _Claim, settings: SmtpSettings) -> None:
    assert claim.message is not None
    try:
        refused = connection.send_message(claim.message, from_addr=settings.sender, to_addrs=[claim.recipient])
    except smtplib.SMTPRecipientsRefused as error:
        code, text = next(iter(error.recipients.values()), (0, b""))
        description = f"{code} {_text(text)}".strip()
        if 500 <= code < 600:
            raise _Permanent(f"recipient refused: {description}") from error
        raise smtplib.SMTPResponseException(code, text) from error
    except smtplib.SMTPDataError as error:
        if 500 <= error.smtp_code < 600:
            raise _Permanent(f"message refused: {_describe(error)}") from error
        raise
    except (smtplib.SMTPNotSupportedError, UnicodeEncodeError) as error:
        raise _Permanent(f"the server cannot take this address: {error}") from error
    if refused:
        raise _Permanent(f"recipient refused: {refused}")


def _record(db: Database, claim: _Claim, settings: SmtpSettings, report: DeliveryReport, *,
            error: str | None = None, permanent: bool = False) -> None:
    """Commit one result, fenced on the attempt this worker claimed."""
    now = clock.now()
    if error is None:
        values: dict[str, Any] = {"status": SENT, "sent_at": now, "next_attempt_at": None, "last_error": None}
    elif permanent or claim.attempt >= settings.max_attempts:
        values = {"status": FAILED, "next_attempt_at": None, "last_error": error[:1000]}
    else:
        values = {"next_attempt_at": now + backoff(claim.attempt, settings), "last_error": error[:1000]}
    with db.transaction() as session:
        changed = rowcount(session.execute(
            update(Delivery)
            .where(Delivery.id == claim.delivery_id, Delivery.attempts == claim.attempt, Delivery.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        ))
    if not changed:
        log.warning("a delivery's claim was lost (lease expired?)", delivery=claim.delivery_id)
        return
    if error is None:
        report.sent += 1
    elif values.get("status") == FAILED:
        report.failed += 1
        log.warning("email delivery failed", delivery=claim.delivery_id, attempts=claim.attempt, error=error)
    else:
        report.retrying += 1


def _release(db: Database, claims: Iterable[_Claim]) -> int:
    """Hand unsent claims back at once (this worker is running out of its lease)."""
    released = 0
    now = clock.now()
    with db.transaction() as session:
        for claim in claims:
            released += rowcount(session.execute(
                update(Delivery)
                .where(Delivery.id == claim.delivery_id, Delivery.attempts == claim.attempt,
                       Delivery.status == PENDING)
                .values(attempts=Delivery.attempts - 1, next_attempt_at=now)
                .execution_options(synchronize_session=False)
            ))
    return released


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}".strip()
    return f"{type(error).__name__}: {error}".strip()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reset(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        connection.rset()


def _close(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()


def send_test_email(to: str, settings: SmtpSettings | None = None, language: str = "ar") -> None:
    """Send one message to check the SMTP settings; raises what the server or network raised."""
    settings = settings or get_smtp_settings()
    rendered = render("smtp_check", {"payload": {"check": "SMTP"}}, language)
    connection = _connect(settings)
    try:
        connection.send_message(build_message(rendered, None, settings, to=to), from_addr=settings.sender,
                                to_addrs=[to])
    finally:
        _close(connection)


def requeue_failed(session: Session, *, since: datetime | None = None) -> int:
    """Put failed email deliveries back in the queue (attempts start again), e.g. after an SMTP outage."""
    query = update(Delivery).where(Delivery.channel == EMAIL, Delivery.status == FAILED)
    if since is not None:
        query = query.where(Delivery.id.in_(
            select(Delivery.id).join(Notification, Notification.id == Delivery.notification_id)
            .where(Notification.created_at >= since)
        ))
    return rowcount(session.execute(
        query.values(status=PENDING, attempts=0, next_attempt_at=clock.now(), last_error=None)
        .execution_options(synchronize_session=False)
    ))


def delivery_counts(session: Session) -> dict[str, int]:
    """How many deliveries per "channel:status", e.g. {"email:pending": 3, "in_app:read": 10}."""
    rows = session.execute(
        select(Delivery.channel, Delivery.status, func.count()).group_by(Delivery.channel, Delivery.status)
    )
    return {f"{channel}:{status}": count for channel, status, count in rows}


def run_once(db: Database, settings: SmtpSettings | None = None, batch: int | None = None) -> DeliveryReport:
    """Fan out every pending notification, then send email until nothing is due
    (what `tansiq notifications run --once` does)."""
    settings = settings or get_smtp_settings()
    batch = batch or settings.batch_size
    while True:
        with db.transaction() as session:
            if fan_out(session).notifications == 0:
                break
    total = DeliveryReport()
    for _ in range(10_000):
        report = deliver_due(db, settings, batch)
        total.add(report)
        if report.claimed < batch or report.released:
            break
    return total


def run_forever(db: Database, settings: SmtpSettings | None = None, stop: threading.Event | None = None) -> None:
    """Poll until `stop` is set or SIGTERM/SIGINT arrives; the batch in hand is finished first."""
    settings = settings or get_smtp_settings()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        started = time.monotonic()
        report = DeliveryReport()
        try:
            with db.transaction() as session:
                fan_out(session)
            report = deliver_due(db, settings)
        except Exception:  # the database may be away for a moment; keep polling
            log.exception("notification delivery failed")
        if report.claimed < settings.batch_size:
            stop.wait(max(0.0, settings.poll_seconds - (time.monotonic() - started)))


# --------------------------------------------------------------------------------------------------
# In-app inbox
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InboxEntry:
    delivery_id: int
    notification_id: int
    instance_id: int | None
    template: str
    subject: str
    body: str
    read: bool
    created_at: datetime
    read_at: datetime | None
    directive_id: int | None = None  # the directive it is about, if any
    work_item_id: int | None = None  # the open step of the instance the reader may work, if any


def _in_app_of(user_id: int, statuses: tuple[str, ...]) -> tuple[Any, ...]:
    """The filter every inbox query shares: the user's own in-app deliveries in these statuses."""
    return (Delivery.user_id == user_id, Delivery.channel == IN_APP, Delivery.status.in_(statuses))


def inbox(session: Session, user_id: int, unread_only: bool = False, *, limit: int = 50,
          offset: int = 0, language: str | None = None) -> list[InboxEntry]:
    """A user's in-app notifications, newest first, rendered in `language` (a page's), else the user's own."""
    user = _inbox_owner(session, user_id)
    statuses = (SENT,) if unread_only else (SENT, READ)
    rows = session.execute(
        select(Delivery, Notification)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(*_in_app_of(user_id, statuses))
        .order_by(Notification.created_at.desc(), Delivery.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return _entries(session, user, rows, language)


def inbox_total(session: Session, user_id: int, unread_only: bool = False) -> int:
    """How many entries `inbox` pages through (for "page n of m")."""
    statuses = (SENT,) if unread_only else (SENT, READ)
    return session.scalar(select(func.count()).select_from(Delivery).where(*_in_app_of(user_id, statuses))) or 0


def inbox_entry(session: Session, delivery_id: int, user_id: int, *, language: str | None = None) -> InboxEntry:
    """One of the user's in-app notifications; another user's (or an email delivery) is not found, so its
    existence is not revealed."""
    user = _inbox_owner(session, user_id)
    row = session.execute(
        select(Delivery, Notification).join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.id == delivery_id, *_in_app_of(user_id, (SENT, READ)))
    ).first()
    if row is None:
        raise NotFound(N_("no notification %(notification)s in your inbox"), params={"notification": str(delivery_id)})
    return _entries(session, user, [row], language)[0]


def _inbox_owner(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("no user %(username)s"), params={"username": str(user_id)})
    return user


def _entries(session: Session, user: User, rows: Iterable[Any], language: str | None) -> list[InboxEntry]:
    rows = list(rows)
    links = _links(session, user, {notification.instance_id for _, notification in rows} - {None})
    entries = []
    for delivery, notification in rows:
        rendered = render_notification(session, notification, user, language or user.language)
        directive_id, work_item_id = links.get(notification.instance_id, (None, None))
        entries.append(InboxEntry(
            delivery_id=delivery.id, notification_id=notification.id, instance_id=notification.instance_id,
            template=notification.template, subject=rendered.subject, body=rendered.text,
            read=delivery.status == READ, created_at=notification.created_at, read_at=delivery.read_at,
            directive_id=directive_id, work_item_id=work_item_id,
        ))
    return entries


def _links(session: Session, user: User, instance_ids: set[int]) -> dict[int, tuple[int | None, int | None]]:
    """Per instance: its directive and the first open step the reader may work (two queries for a whole page),
    so a notification leads to where its reader acts: the step if it is theirs, else the directive."""
    if not instance_ids:
        return {}
    directive_of = dict(session.execute(
        select(Directive.instance_id, Directive.id).where(Directive.instance_id.in_(instance_ids))).all())
    steps = access.inbox(select(WorkItem.instance_id, WorkItem.id), user, access.entity_code(session, user))
    step_of: dict[int, int] = {}
    for instance_id, item_id in session.execute(
            steps.where(WorkItem.instance_id.in_(instance_ids), WorkItem.status == OPEN)
            .order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)).all():
        step_of.setdefault(instance_id, item_id)
    return {i: (directive_of.get(i), step_of.get(i)) for i in instance_ids}


def unread_count(session: Session, user_id: int) -> int:
    """The bell's figure: one count over the user's in-app deliveries."""
    return session.scalar(select(func.count()).select_from(Delivery).where(*_in_app_of(user_id, (SENT,)))) or 0


def mark_read(session: Session, delivery_id: int, user_id: int) -> Delivery:
    """Mark one of the user's in-app notifications read (idempotent). Another user's delivery is
    reported as not found, so its existence is not revealed."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.user_id != user_id or delivery.channel != IN_APP:
        raise NotFound(N_("no notification %(notification)s in your inbox"), params={"notification": str(delivery_id)})
    if delivery.status != READ:
        delivery.status = READ
        delivery.read_at = clock.now()
    return delivery


def mark_all_read(session: Session, user_id: int) -> int:
    return rowcount(session.execute(
        update(Delivery)
        .where(Delivery.user_id == user_id, Delivery.channel == IN_APP, Delivery.status == SENT)
        .values(status=READ, read_at=clock.now())
        .execution_options(synchronize_session=False)
    ))


# --------------------------------------------------------------------------------------------------
# Daily digest
# --------------------------------------------------------------------------------------------------

def digest_key(entity_code: str, day: date) -> str:
    return f"digest:{entity_code}:{day.isoformat()}"


def daily_digest(session: Session, day: date) -> list[Notification]:
    """One `daily_digest` notification per active entity with open steps, for `day` (a date in
    Riyadh). Idempotent per entity and day: an entity that has its digest for that day is skipped.
    Returns the notifications created now."""
    now = clock.now()
    rows = session.execute(
        select(WorkItem, Directive.reference)
        .outerjoin(Directive, Directive.instance_id == WorkItem.instance_id)
        .where(WorkItem.status == OPEN, WorkItem.assignee_entity.is_not(None))
        .order_by(WorkItem.assignee_entity, WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)
    ).all()
    by_entity: dict[str, list[tuple[WorkItem, str | None]]] = {}
    for item, reference in rows:
        if item.assignee_entity is None:  # never: the query reads assigned steps only
            continue
        by_entity.setdefault(item.assignee_entity, []).append((item, reference))
    if not by_entity:
        return []
    entities = {e.code: e for e in session.scalars(select(Entity).where(Entity.code.in_(by_entity)))}
    keys = {code: digest_key(code, day) for code in by_entity}
    done = set(session.scalars(select(Notification.source_key).where(Notification.source_key.in_(keys.values()))))
    created = []
    forecast_of = _digest_forecasts(session, now)
    for code, items in by_entity.items():
        entity = entities.get(code)
        if keys[code] in done or entity is None or not entity.active:
            continue
        listed = [
            {"name": item.name, "name_ar": item.name_ar, "name_en": item.name_en, "reference": reference,
             "instance_id": item.instance_id, "work_item_id": item.id,
             "due": item.due_at.isoformat() if item.due_at else None,
             "overdue": item.due_at is not None and item.due_at < now}
            for item, reference in items
        ]
        notification = Notification(
            instance_id=None, source_key=keys[code], template="daily_digest", recipient_role=None,
            recipient_entity=code, status=PENDING_NOTIFICATION, created_at=now,
            payload={"day": day.isoformat(), "entity": code, "open_count": len(listed),
                     "overdue_count": sum(1 for i in listed if i["overdue"]),
                     "items": listed[:DIGEST_MAX_ITEMS], "more": max(0, len(listed) - DIGEST_MAX_ITEMS),
                     "forecast": forecast_of(code)},
        )
        try:
            with session.begin_nested():  # a concurrent run may have written it a moment ago
                session.add(notification)
                session.flush()
        except IntegrityError:
            continue
        created.append(notification)
    return created




def _digest_forecasts(session: Session, now: datetime) -> Callable[[str], dict[str, Any]]:
    """Each entity's escalation forecast for its digest, in its payload (`forecast`: the digest is rendered
    later, from the payload; older payloads have none and show no forecast line), weighed once for every
    entity: escalations due within 24 and 72 hours (engine.insight.forecast), and of its open steps due within 72
    hours how many are likely to miss their due moment (a probability of forecast.LIKELY or more) and the
    expected number of misses. A step already past due is not counted: it has missed, and the digest lists
    it as overdue."""
    from engine.insight import forecast  # the forecast reads the kept step figures: only when a digest is made

    ahead = forecast.outlook(session, now, top=0)
    levels = forecast.escalations_ahead(session, now)

    def of(entity: str) -> dict[str, Any]:
        totals = forecast.totals(o for o in levels if o.entity == entity)
        return {"escalations_24h": totals[24], "escalations_72h": totals[72], "due_72h": ahead.due[entity],
                "likely_misses": ahead.likely[entity], "expected_misses": round(ahead.expected[entity], 2)}

    return of


def riyadh_today() -> date:
    return clock.now().astimezone(RIYADH).date()
