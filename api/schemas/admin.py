"""Entities, users, seasons and process models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from api.schemas.common import Strict, Text, example


def _iso_date_text(value: object) -> object:
    """A date as JSON carries it: an ISO string (pydantic's strict mode refused those too, and lax mode
    takes a number as seconds since 1970)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("a date is written YYYY-MM-DD")
    return value


StrictDate = Annotated[date, BeforeValidator(_iso_date_text)]

EntityKind = Literal["service", "government", "operator", "private", "other"]
Role = Literal["admin", "secretariat", "follow_up_officer", "supervisor", "entity_user", "leadership", "viewer"]
Language = Literal["ar", "en"]
CalendarMode = Literal["season", "working_days"]


class EntityOut(BaseModel):
    code: str
    name_ar: str
    name_en: str
    kind: str
    email: str | None
    active: bool


class EntityCreate(Strict):
    model_config = example({"code": "red_crescent", "name_ar": "هيئة الهلال الأحمر السعودي",
        "name_en": "Saudi Red Crescent Authority", "kind": "government", "email": "madinah@srca.example.sa"})

    code: Annotated[Text, Field(min_length=2, max_length=50, examples=["housing"])]
    name_ar: Annotated[Text, Field(min_length=1, max_length=200)]
    name_en: Annotated[Text, Field(min_length=1, max_length=200)]
    kind: EntityKind = "service"
    email: Annotated[Text, Field(max_length=254)] | None = None


class UserOut(BaseModel):
    id: int
    username: str
    full_name: str
    email: str | None
    role: str
    entity: str | None
    language: str
    active: bool
    created_at: datetime


class UserCreate(Strict):
    model_config = example({"username": "reception.lead", "password": "a long enough secret", "role": "entity_user",
        "full_name": "عبدالله الحربي", "email": "reception.lead@example.sa", "entity": "reception", "language": "ar"})

    username: Annotated[Text, Field(min_length=2, max_length=60)]
    password: Annotated[Text, Field(min_length=10, max_length=200)]
    role: Role
    full_name: Annotated[Text, Field(max_length=200)] = ""
    email: Annotated[Text, Field(max_length=254)] | None = None
    entity: Annotated[Text, Field(max_length=50)] | None = None
    language: Language = "ar"


class UserUpdate(Strict):
    model_config = example({"full_name": "عبدالله بن سعد الحربي", "language": "en"})

    active: bool | None = None
    full_name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    email: Annotated[Text, Field(max_length=254)] | None = None
    language: Language | None = None
    password: Annotated[Text, Field(min_length=10, max_length=200)] | None = None


class SeasonOut(BaseModel):
    hijri_year: int
    name_ar: str
    name_en: str
    starts_on: date
    ends_on: date
    calendar_mode: str
    holidays: list[str]


class SeasonCreate(Strict):
    model_config = example({"hijri_year": 1447, "starts_on": "2026-04-18", "ends_on": "2026-07-16",
        "calendar_mode": "season", "holidays": ["2026-05-27"]})

    hijri_year: Annotated[int, Field(ge=1343, le=1500)]
    starts_on: date
    ends_on: date
    calendar_mode: CalendarMode = "season"
    holidays: Annotated[list[StrictDate], Field(max_length=400)] = Field(default_factory=list)


class SeasonUpdate(Strict):
    model_config = example({"ends_on": "2026-07-20", "calendar_mode": "working_days"})

    starts_on: date | None = None
    ends_on: date | None = None
    calendar_mode: CalendarMode | None = None
    holidays: Annotated[list[StrictDate], Field(max_length=400)] | None = None


class ProcessModelOut(BaseModel):
    key: str
    version: int
    name: str
    name_ar: str | None
    name_en: str | None
    checksum: str
    filename: str
    element_count: int
    deployed_at: datetime
    deployed_by: str


class ProcessModelDetail(ProcessModelOut):
    versions: list[ProcessModelOut]


class DeploymentOut(BaseModel):
    created: bool
    model: ProcessModelOut
