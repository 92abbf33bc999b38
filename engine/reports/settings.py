"""Report settings, read from `TANSIQ_REPORTS_*` environment variables.

    TANSIQ_REPORTS_DIR            where archived report files go (default: $TANSIQ_HOME/reports)
    TANSIQ_REPORTS_TIMEZONE       the zone of report days and cron schedules (default: Asia/Riyadh)
    TANSIQ_REPORTS_FORMATS        JSON list or comma list of pdf, html, xlsx, csv, json (default: all)
    TANSIQ_REPORTS_LANGUAGES      JSON list or comma list of ar, en (default: ar,en)
    TANSIQ_REPORTS_DIGITS         arab (Eastern Arabic digits in Arabic documents) or latn (default: arab)
    TANSIQ_REPORTS_DAILY_CRON     cron of the daily report, in TIMEZONE (default: 15 0 * * *: the day before)
    TANSIQ_REPORTS_PERIODIC_CRON  cron of the periodic report (default: 30 0 * * 0: Sunday, the 7 days before)
    TANSIQ_REPORTS_SEASONAL_CRON  cron of the seasonal report (default: 45 0 * * 0: Sunday, the season so far)
    TANSIQ_REPORTS_DIGEST_CRON    cron of the entities' daily digests (default: 0 6 * * *)
    TANSIQ_REPORTS_PUBLIC_URL     Tansiq's web address, for links to archived files in Prefect artifacts
    TANSIQ_REPORTS_LONGEST_OVERDUE  rows in the longest-overdue list (default: 15)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.foundation.settings import get_settings

FORMATS = ("pdf", "html", "xlsx", "csv", "json")
LANGUAGES = ("ar", "en")


class ReportSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANSIQ_REPORTS_", extra="ignore")

    dir: Path | None = Field(default=None, description="Archive folder; $TANSIQ_HOME/reports when unset.")
    timezone: str = "Asia/Riyadh"
    formats: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(FORMATS))
    languages: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(LANGUAGES))
    digits: str = Field(default="arab", pattern="^(arab|latn)$")
    daily_cron: str = "15 0 * * *"
    periodic_cron: str = "30 0 * * 0"
    seasonal_cron: str = "45 0 * * 0"
    digest_cron: str = Field(default="0 6 * * *", description="Cron of each entity's daily digest of its open "
                                                              "steps, in TIMEZONE (default: every day at 06:00).")
    public_url: str | None = None
    longest_overdue: int = Field(default=15, ge=1, le=500)

    @field_validator("formats", "languages", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown report format(s) {unknown} (known: {', '.join(FORMATS)})")
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        unknown = [lang for lang in value if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"unknown report language(s) {unknown} (known: {', '.join(LANGUAGES)})")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def archive_dir(self) -> Path:
        return (self.dir if self.dir is not None else get_settings().home / "reports").resolve()


@lru_cache(maxsize=1)
def get_report_settings() -> ReportSettings:
    return ReportSettings()
