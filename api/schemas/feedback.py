"""Pilgrim feedback (public form and the unit's list) and recurring obstacles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Id, Strict, Text, example
from api.schemas.directives import Code, Deadline, DirectiveSummary, Kind, Priority, ProgrammeTrack, Track
from api.schemas.meetings import EntityName

Service = Literal["housing", "transport", "reception", "departure", "other"]
Tag = Annotated[Text, Field(max_length=60)]


class NamedChoice(BaseModel):
    code: str
    name_ar: str
    name_en: str


class PublicFeedbackForm(BaseModel):
    token: str = Field(description="Send it back with the form; it must be a few seconds old and is used once.")
    honeypot_field: str = Field(description="A field to render hidden from people and leave empty.")
    min_seconds: float
    max_text: int
    services: list[NamedChoice]
    entities: list[NamedChoice]


class PublicFeedbackIn(BaseModel):
    """What the public form sends. Types are loose on purpose: the engine checks every field (after the
    attempt is counted against the address's limit) and names each problem."""

    model_config = ConfigDict(extra="forbid", **example(
        {"token": "<the token from GET /public/feedback/form>", "service": "transport", "rating": 2,
        "text": "تأخرت الحافلة من المطار إلى السكن أكثر من ثلاث ساعات", "website": ""}))

    token: Annotated[str, Field(max_length=300)] = ""
    service: Annotated[str, Field(max_length=40)] = ""
    rating: int | None = None
    text: Annotated[str, Field(max_length=20_000)] = ""
    entity: Annotated[str, Field(max_length=60)] | None = None
    website: Annotated[str, Field(max_length=2_000)] | None = Field(default=None, description="Leave empty.")


class PublicFeedbackAccepted(BaseModel):
    received: bool = True
    message_ar: str = "شكراً لك، وصل رأيك إلى وحدة المتابعة وتنسيق عمليات الحج."
    message_en: str = "Thank you: your feedback has reached the Hajj operations follow-up unit."


class FeedbackCreate(Strict):
    """Feedback recorded by a system or a member of staff. Give `text` (its language is detected) or
    `text_ar` and/or `text_en`."""

    model_config = example({"service": "housing", "rating": 3, "text_ar": "المسكن نظيف لكن المصاعد متعطلة",
        "text_en": "The accommodation is clean but the lifts are out of order", "language": "ar", "entity": "housing",
        "tags": ["lifts"], "received_at": "2026-05-19T21:30:00+03:00", "source_ref": "survey-1447-00042"})

    service: Service
    rating: Annotated[int, Field(ge=1, le=5)]
    text: Annotated[Text, Field(min_length=1, max_length=4000)] | None = None
    text_ar: Annotated[Text, Field(max_length=4000)] | None = None
    text_en: Annotated[Text, Field(max_length=4000)] | None = None
    language: Literal["ar", "en"] | None = Field(default=None, description="The language the pilgrim wrote in.")
    entity: Code | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] = Field(default_factory=list)
    received_at: datetime | None = Field(default=None, description="When the pilgrim gave it (now if omitted).")
    source_ref: Annotated[Text, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="The sending system's own id: sending it twice is refused (409).")


class FeedbackUpdate(Strict):
    """Only the fields sent are changed."""

    model_config = example({"status": "reviewed", "tags": ["buses", "airport"], "entity": "transport",
        "note": "أُحيلت إلى النقل ضمن توجيه تأخر الحافلات"})

    status: Literal["new", "reviewed", "dismissed"] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    note: Annotated[Text, Field(max_length=2000)] | None = None
    entity: Code | None = Field(default=None, description="Name the entity when it was not known (null clears it).")


class FeedbackOut(BaseModel):
    id: int
    season: int
    received_at: datetime
    channel: str
    service: str
    entity: EntityName | None
    rating: int
    language: str
    text: str = Field(description="The pilgrim's words, in the language they wrote in.")
    text_ar: str | None
    text_en: str | None
    status: str
    note: str | None
    tags: list[str]
    submitted_by: str
    source_ref: str | None
    updated_by: str | None
    updated_at: datetime | None
    directives: list[DirectiveSummary] = Field(description="Directives raised from this item.")


class RaiseDirective(Strict):
    """A draft directive from feedback items. Fields left out come from the suggestion
    (GET /feedback/directive-suggestion); the items' tags are always carried over."""

    model_config = example({"feedback_ids": [41, 42, 57], "title": "معالجة تأخر الحافلات من المطار إلى مساكن الحجاج",
        "responsible_entity": "transport", "deadline": "PT72H", "kind": "directive", "priority": "high",
        "supporting_entities": ["airport"]})

    feedback_ids: Annotated[list[Id], Field(min_length=1, max_length=200)]
    title: Annotated[Text, Field(min_length=1, max_length=500)] | None = None
    responsible_entity: Code | None = None
    deadline: Deadline | None = None
    kind: Kind | None = None
    title_en: Annotated[Text, Field(max_length=500)] | None = None
    body: Annotated[Text, Field(max_length=20_000)] | None = None
    source: Annotated[Text, Field(max_length=300)] | None = None
    track: Track | None = None
    programme_track: ProgrammeTrack | None = None
    priority: Priority | None = None
    supporting_entities: Annotated[list[Code], Field(max_length=20)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    meeting_id: Id | None = None
    season: Annotated[int, Field(ge=1343, le=1500)] | None = None
    process_model_key: Annotated[Text, Field(min_length=1, max_length=200)] | None = None


class DirectiveSuggestion(BaseModel):
    title: str
    title_en: str | None
    kind: str
    responsible_entity: str | None
    deadline: str
    body: str | None
    source: str | None
    tags: list[str]


class CountAndMean(BaseModel):
    key: str | None
    responses: int
    mean_rating: float | None


class FeedbackFiguresOut(BaseModel):
    responses: int
    mean_rating: float | None
    low_ratings: int = Field(description="Ratings of 1 or 2.")
    by_rating: dict[int, int]
    by_service: list[CountAndMean]
    by_entity: list[CountAndMean] = Field(description="`key` is the entity code, null for feedback without one.")


class ObstacleOut(BaseModel):
    tag: str
    count: int = Field(description="Directives and feedback items with the tag, this season.")
    previous_count: int
    directives: int
    feedback: int
    previous_directives: int
    previous_feedback: int
    entities: list[EntityName]
    previous_entities: list[EntityName]


class ObstaclesOut(BaseModel):
    season: int
    previous_season: int | None
    obstacles: list[ObstacleOut]
