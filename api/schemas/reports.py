"""Report runs over the API: what ran, for which period, and the files it archived."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Strict, example


class ReportFileOut(BaseModel):
    format: str
    language: str | None
    name: str
    size: int | None = Field(default=None, description="Bytes.")
    sha256: str | None = Field(default=None, description="The file's SHA-256, as archived.")
    url: str = Field(description="Where to download it (GET, same authorisation).")


class ReportRunOut(BaseModel):
    id: int
    kind: str
    period_start: date
    period_end: date
    status: str
    trigger: str
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    prefect_flow_run_id: str | None
    files: list[ReportFileOut]


class ReportRunIn(Strict):
    model_config = example({"day": "2026-05-19", "formats": ["pdf", "xlsx"], "languages": ["ar", "en"]})

    day: date | None = Field(default=None, description="Daily: the local day (default: yesterday).")
    start: date | None = Field(default=None, description="Periodic: the first day (default: end minus 6).")
    end: date | None = Field(default=None, description="Periodic: the last day (default: yesterday).")
    season: int | None = Field(default=None, ge=1343, le=1500, description="Seasonal: the season's Hijri year.")
    formats: list[Literal["pdf", "html", "xlsx", "csv", "json"]] | None = Field(default=None, max_length=5)
    languages: list[Literal["ar", "en"]] | None = Field(default=None, max_length=2)
