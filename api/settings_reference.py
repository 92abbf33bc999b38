"""Every `TANSIQ_*` setting with its default and meaning, generated from the settings classes.

`deploy/tansiq.env` is this module's output (`tansiq settings env > deploy/tansiq.env`); a test fails when the
shipped file and the classes disagree, so a new setting cannot be left out of it. Each setting is written
commented out with its default: an operator uncomments what they change.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from api.settings import ApiSettings
from engine.delivery.notification_delivery import SmtpSettings
from engine.foundation.settings import Settings
from engine.reports.settings import ReportSettings

# (heading, class, the fields of that class to list: those its base class does not already list)
SECTIONS: tuple[tuple[str, type[BaseSettings]], ...] = (
    ("The engine: database, files, logs, timers, health", Settings),
    ("The API and web UI: tokens, requests, evidence, proxies", ApiSettings),
    ("Email (the notification worker)", SmtpSettings),
    ("Reports (the report scheduler and its flows)", ReportSettings),
)

# Defaults that depend on the machine they are read on, written as what they mean instead.
_DEFAULT_WORDS = {
    "TANSIQ_SECRET_KEY": "(generated once into TANSIQ_HOME/secret.key)",
    "TANSIQ_DATABASE_URL": "(sqlite:///TANSIQ_HOME/tansiq.db)",
    "TANSIQ_REPORTS_DIR": "(TANSIQ_HOME/reports)",
    "TANSIQ_REPORTS_PUBLIC_URL": "(TANSIQ_PUBLIC_URL)",
}
# Fields with no description of their own in the class.
_MEANINGS = {
    "TANSIQ_EVIDENCE_MAX_UNZIPPED_BYTES": "Largest total size of an evidence file's parts once unzipped "
                                          "(xlsx and docx are zip files): a zip bomb is refused.",
    "TANSIQ_EVIDENCE_MAX_ZIP_RATIO": "Largest unzipped-to-zipped ratio of an xlsx or docx evidence file.",
    "TANSIQ_SMTP_HOST": "The SMTP server (relay) the notification worker sends through.",
    "TANSIQ_SMTP_PORT": "Its port: 25, 587 with starttls, 465 with tls.",
    "TANSIQ_SMTP_USERNAME": "SMTP user name, when the relay asks for one (sent only over TLS).",
    "TANSIQ_SMTP_PASSWORD": "SMTP password (sent only over TLS).",
    "TANSIQ_SMTP_SENDER_NAME": "The display name of the From address.",
    "TANSIQ_SMTP_BATCH_SIZE": "Deliveries one worker claims at a time.",
    "TANSIQ_SMTP_POLL_SECONDS": "How often the notification worker looks for work when idle.",
    "TANSIQ_SMTP_MAX_ATTEMPTS": "Tries of one delivery before it is marked failed (and shown on the operations "
                                "pages).",
    "TANSIQ_SMTP_BACKOFF_BASE_SECONDS": "Wait before the first retry; doubled after each failure.",
    "TANSIQ_SMTP_BACKOFF_MAX_SECONDS": "Longest wait between retries.",
    "TANSIQ_REPORTS_TIMEZONE": "The zone report days, cron schedules and printed times are in.",
    "TANSIQ_REPORTS_FORMATS": "Formats each run writes, comma-separated: pdf, html, xlsx, csv, json.",
    "TANSIQ_REPORTS_LANGUAGES": "Languages each run writes, comma-separated: ar, en.",
    "TANSIQ_REPORTS_DIGITS": "Digits in Arabic reports: arab (٠١٢) or latn (012).",
    "TANSIQ_REPORTS_DAILY_CRON": "Cron of the daily report (yesterday's), in TANSIQ_REPORTS_TIMEZONE.",
    "TANSIQ_REPORTS_PERIODIC_CRON": "Cron of the periodic (weekly) report.",
    "TANSIQ_REPORTS_SEASONAL_CRON": "Cron of the seasonal report (to date; final after the season ends).",
    "TANSIQ_REPORTS_PUBLIC_URL": "The address report links use, when it differs from TANSIQ_PUBLIC_URL.",
    "TANSIQ_REPORTS_LONGEST_OVERDUE": "How many of the longest-overdue steps a report lists.",
}


@dataclass(frozen=True)
class Setting:
    variable: str
    default: str
    meaning: str


def _prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def _default(variable: str, field: FieldInfo) -> str:
    if variable in _DEFAULT_WORDS:
        return _DEFAULT_WORDS[variable]
    value: Any = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(part) for part in value)
    if isinstance(value, Path | str | int | float):
        return str(value)
    return json.dumps(value)


def _own_fields(cls: type[BaseSettings]) -> Iterator[tuple[str, FieldInfo]]:
    inherited = {name for base in cls.__mro__[1:] if isinstance(base, type) and issubclass(base, BaseSettings)
                 for name in base.model_fields}
    for name, field in cls.model_fields.items():
        if name not in inherited:
            yield name, field


def settings_of(cls: type[BaseSettings]) -> list[Setting]:
    found = []
    for name, field in _own_fields(cls):
        variable = (_prefix(cls) + name).upper()
        meaning = field.description or _MEANINGS.get(variable)
        if not meaning:
            raise LookupError(f"{variable} has no meaning: give its Field a description")
        found.append(Setting(variable, _default(variable, field), meaning))
    return found


def is_settings_error(exc: ValidationError) -> bool:
    return any(cls.__name__ == exc.title for _, cls in SECTIONS)


def problems_of(exc: ValidationError) -> list[str]:
    """A settings class's validation error as one line per bad variable: `TANSIQ_LOG_LEVEL: String should..`."""
    prefix = next((_prefix(cls) for _, cls in SECTIONS if cls.__name__ == exc.title), "TANSIQ_")
    return [f"{(prefix + str(error['loc'][0])).upper() if error['loc'] else prefix.rstrip('_')}: {error['msg']}"
            for error in exc.errors()]


def every_setting() -> list[Setting]:
    return [setting for _, cls in SECTIONS for setting in settings_of(cls)]


def env_file() -> str:
    """The environment file: a header, then each section's settings, commented out with their defaults."""
    lines = [
        "# Tansiq's settings: every TANSIQ_* variable, with its default and meaning.",
        "# Generated by `tansiq settings env` from the settings classes; do not edit the shipped copy.",
        "# Copy it to /etc/tansiq/tansiq.env (mode 640, owner root:tansiq), uncomment what you change;",
        "# every systemd unit in deploy/systemd reads it. A value is the rest of the line, unquoted.",
    ]
    for heading, cls in SECTIONS:
        lines += ["", f"# --- {heading} " + "-" * max(3, 100 - len(heading) - 7)]
        for setting in settings_of(cls):
            lines.append("")
            lines += [f"# {line}" for line in textwrap.wrap(setting.meaning, 98)]
            lines.append(f"#{setting.variable}={setting.default}")
    return "\n".join(lines) + "\n"
