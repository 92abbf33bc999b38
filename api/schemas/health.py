from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    database: str
    timer_lag_seconds: float


class LiveOut(BaseModel):
    """The process answers; nothing else was checked."""

    status: Literal["alive"] = "alive"
    version: str


class CheckOut(BaseModel):
    ok: bool
    detail: str
    value: float | str | None = Field(default=None, description="What was measured (seconds, a revision).")


class ReadyOut(BaseModel):
    """Every check passed: this process may be sent traffic."""

    status: Literal["ready"] = "ready"
    version: str
    checks: dict[str, CheckOut] = Field(description="database, schema and timer_lag, each with its result.")


class VerificationOut(BaseModel):
    ok: bool
    checked: int
    first_broken_id: int | None
    problem: str | None
