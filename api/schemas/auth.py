from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class EntityRef(BaseModel):
    code: str
    name_ar: str
    name_en: str


class MeOut(BaseModel):
    id: int
    username: str
    full_name: str
    email: str | None
    role: str
    entity: EntityRef | None
    language: str
    permissions: list[str]
    tokens_valid_after: datetime | None
