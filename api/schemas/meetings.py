"""Meetings, their recommendations and "launch all"; and the Excel import of directives (its report)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import Strict, Text, example
from api.schemas.directives import Code, Deadline, DirectiveOut, DirectiveSummary, Kind, Priority, ProgrammeTrack, Track

Held = Annotated[Text, Field(
    min_length=1, max_length=60,
    description="When the meeting was held: a Gregorian date (2026-05-08), a Hijri date (1447-11-21 or "
                "1447-11-21 هـ; years up to 1500 are Hijri) or an ISO 8601 moment (Riyadh time without an offset).",
    examples=["1447-11-21 هـ", "2026-05-08", "2026-05-08T10:00:00+03:00"],
)]


class EntityName(BaseModel):
    code: str
    name_ar: str
    name_en: str


class MeetingCreate(Strict):
    model_config = example({"number": 1, "title_ar": "الاجتماع الدوري الأول للجنة الحج بالمدينة المنورة",
        "title_en": "First periodic meeting of the Madinah Hajj Committee", "held": "1447-11-21 هـ", "season": 1447,
        "chair": "رئيس لجنة الحج بالمدينة المنورة",
        "attending": ["housing", "transport", "reception", "civil_defence"]})

    number: Annotated[int, Field(ge=1, le=100_000)]
    title_ar: Annotated[Text, Field(min_length=1, max_length=300)]
    held: Held
    title_en: Annotated[Text, Field(max_length=300)] | None = None
    season: Annotated[int, Field(ge=1343, le=1500)] | None = Field(
        default=None, description="Hijri year; the season of the meeting's date if omitted.")
    chair: Annotated[Text, Field(max_length=200)] | None = None
    minutes: Annotated[Text, Field(max_length=100_000)] | None = Field(default=None, description="The minutes as text.")
    attending: Annotated[list[Code], Field(max_length=200)] = Field(
        default_factory=list, description="Codes of the entities that attended.")


class MeetingUpdate(Strict):
    """Only the fields sent are changed (send `null` to clear an optional one)."""

    model_config = example({"minutes": "ناقشت اللجنة جاهزية مراكز الاستقبال وتكدس الحافلات عند المنطقة المركزية.",
        "attending": ["housing", "transport", "reception", "traffic"]})

    title_ar: Annotated[Text, Field(min_length=1, max_length=300)] | None = None
    title_en: Annotated[Text, Field(max_length=300)] | None = None
    held: Held | None = None
    chair: Annotated[Text, Field(max_length=200)] | None = None
    minutes: Annotated[Text, Field(max_length=100_000)] | None = None
    attending: Annotated[list[Code], Field(max_length=200)] | None = None


class MeetingDocumentOut(BaseModel):
    id: int
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    download_url: str


class MeetingOut(BaseModel):
    id: int
    season: int
    number: int
    title_ar: str
    title_en: str | None
    held_at: datetime
    held_on: date = Field(description="The local (Riyadh) Gregorian date.")
    held_on_hijri: str = Field(description="The Hijri (Umm al-Qura) date, as 1447-11-21.")
    chair: str | None
    minutes: str | None
    attending: list[EntityName]
    created_by: str
    created_at: datetime


class MeetingSummary(MeetingOut):
    directives: int = Field(description="Directives of this meeting the caller may see.")
    drafts: int = Field(description="Of those, drafts not launched yet.")


class CarriedDirective(DirectiveSummary):
    meeting_id: int
    meeting_number: int
    current_steps: list[str]


class MeetingPageOut(MeetingOut):
    documents: list[MeetingDocumentOut]
    directives: list[DirectiveOut] = Field(description="The meeting's own directives (its recommendations).")
    carried_forward: list[CarriedDirective] = Field(
        description="Directives still open (draft or active) from meetings held before this one.")
    drafts: int
    can_manage: bool = Field(description="May the caller edit the meeting, add recommendations and launch them.")


class RecommendationCreate(Strict):
    """A recommendation of the meeting, entered as a draft directive linked to it."""

    model_config = example({"title": "معالجة تكدس الحافلات عند المنطقة المركزية في أوقات الصلوات",
        "title_en": "Resolve bus congestion in the central area around prayer times",
        "body": "توصي اللجنة بإعادة جدولة مواعيد وصول الحافلات وتخصيص مواقف انتظار بديلة قرب المنطقة المركزية.",
        "responsible_entity": "transport", "deadline": "1447-12-05 هـ", "priority": "high",
        "supporting_entities": ["traffic", "municipality"], "tags": ["congestion", "buses"]})

    title: Annotated[Text, Field(min_length=1, max_length=500)]
    responsible_entity: Code
    deadline: Deadline
    kind: Kind = "recommendation"
    title_en: Annotated[Text, Field(max_length=500)] | None = None
    body: Annotated[Text, Field(max_length=20_000)] | None = None
    source: Annotated[Text, Field(max_length=300)] | None = None
    reference: Annotated[Text, Field(min_length=1, max_length=40)] | None = None
    issued_on: date | None = None
    track: Track = "business"
    programme_track: ProgrammeTrack = "none"
    priority: Priority = "normal"
    supporting_entities: Annotated[list[Code], Field(max_length=20)] = Field(default_factory=list)
    tags: Annotated[list[Annotated[Text, Field(max_length=60)]], Field(max_length=20)] = Field(default_factory=list)
    process_model_key: Annotated[Text, Field(min_length=1, max_length=200)] | None = None


class LaunchRowOut(BaseModel):
    directive_id: int
    reference: str
    title: str
    title_en: str | None
    responsible_entity: str
    outcome: str = Field(description="launched, failed, or not_launched (because another draft failed).")
    error: str | None
    code: str | None


class LaunchReportOut(BaseModel):
    meeting_id: int
    ok: bool
    launched: int
    failed: int
    rows: list[LaunchRowOut]


# --- the Excel import --------------------------------------------------------------------------------------

class ImportErrorOut(BaseModel):
    row: int = Field(description="The Excel row, as the user sees it (0: the file itself).")
    column: str = Field(description="The Excel column letter, when the problem is in one cell.")
    field: str
    header_ar: str
    header_en: str
    code: str = Field(description="Machine-readable: required, bad_choice, unknown_entity, bad_date, deadline_passed, "
                                  "bad_reference, duplicate_reference, reference_taken, unknown_meeting, bad_tag, "
                                  "too_long, unknown_header, missing_column, duplicate_header, bad_file, empty, "
                                  "too_many_rows, model_missing, launch_failed ...")
    message: str
    value: str | None


class ImportRowOut(BaseModel):
    row: int
    status: str = Field(description="valid (dry run), invalid, imported, launched, launch_failed, or not_imported.")
    reference: str | None
    directive_id: int | None
    errors: list[ImportErrorOut]


class ImportReportOut(BaseModel):
    mode: str
    dry_run: bool
    launch: bool
    season: int | None
    ok: bool
    total: int
    valid: int
    invalid: int
    imported: int
    launched: int
    seconds: float
    errors: list[ImportErrorOut] = Field(description="Every problem, the file's first, then by row.")
    rows: list[ImportRowOut]
