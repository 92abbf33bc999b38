from __future__ import annotations

from pydantic import BaseModel


class HealthOut(BaseModel):
    database: str
    timer_lag_seconds: float


class VerificationOut(BaseModel):
    ok: bool
    checked: int
    first_broken_id: int | None
    problem: str | None
