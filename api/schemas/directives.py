"""Directives, their steps, escalations, evidence and timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Id, Strict, Text, example

Kind = Literal["decision", "circular", "directive", "recommendation"]
Track = Literal["business", "technology", "human_resources"]
ProgrammeTrack = Literal["baraa", "tansiq", "none"]
Priority = Literal["normal", "high", "urgent"]
Status = Literal["draft", "active", "completed", "cancelled"]
Code = Annotated[Text, Field(min_length=1, max_length=50)]
Deadline = Annotated[Text, Field(
    min_length=1, max_length=100,
    description="An ISO 8601 moment (2026-06-01T12:00:00Z), a duration from now (PT6H, P2D), a count "
                "(3 working days) or a Hijri date (1447-12-05 هـ, end of that day in Riyadh).",
    examples=["PT48H", "2026-06-01T12:00:00+03:00", "1447-12-05 هـ"],
)]
Reason = Annotated[Text, Field(min_length=1, max_length=2000)]


class DirectiveCreate(Strict):
    model_config = example({"title": "رفع جاهزية مراكز الاستقبال على طريق الهجرة قبل وصول طلائع الحجاج",
        "title_en": "Raise the readiness of the reception centres on the Hijrah road before the first pilgrims arrive",
        "body": "على مراكز الاستقبال استكمال التجهيزات والكوادر والمستلزمات ورفع تقرير بالجاهزية"
        " إلى غرفة التنسيق والعمليات.",
        "kind": "directive", "responsible_entity": "reception", "deadline": "PT48H",
        "source": "لجنة الحج بالمدينة المنورة",
        "track": "business", "programme_track": "tansiq", "priority": "high", "tags": ["readiness", "reception"],
        "launch": True})

    title: Annotated[Text, Field(min_length=1, max_length=500)]
    kind: Kind
    responsible_entity: Code
    deadline: Deadline
    title_en: Annotated[Text, Field(max_length=500)] | None = None
    body: Annotated[Text, Field(max_length=20_000)] | None = None
    source: Annotated[Text, Field(max_length=300)] | None = None
    reference: Annotated[Text, Field(min_length=1, max_length=40)] | None = None
    meeting_id: Id | None = None
    issued_on: date | None = None
    track: Track = "business"
    programme_track: ProgrammeTrack = "none"
    priority: Priority = "normal"
    supporting_entities: Annotated[list[Code], Field(max_length=20)] = Field(default_factory=list)
    tags: Annotated[list[Annotated[Text, Field(max_length=60)]], Field(max_length=20)] = Field(default_factory=list)
    season: Annotated[int, Field(ge=1343, le=1500)] | None = Field(
        default=None, description="Hijri year; the current season if omitted.")
    process_model_key: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="The BPMN process to run; chosen from the kind and priority if omitted.")
    launch: bool = Field(default=False, description="Launch at once instead of keeping a draft.")


class CancelRequest(Strict):
    model_config = example({"reason": "أُلغي التوجيه بقرار اللجنة بعد دمجه في توجيه تكدس الحافلات عند المنطقة المركزية"})

    reason: Reason


class ExtensionRequest(Strict):
    model_config = example({"new_deadline": "2026-06-01T12:00:00+03:00",
        "reason": "تأخر توريد المستلزمات إلى مراكز الاستقبال، والمورّد التزم بالتسليم خلال يومين"})

    new_deadline: Deadline
    reason: Reason


class DirectiveSummary(BaseModel):
    id: int
    reference: str
    title: str
    title_en: str | None
    kind: str
    priority: str
    status: str
    responsible_entity: str
    deadline_at: datetime
    overdue: bool = Field(description="active and past its deadline, or with a step past its due moment")


class DirectiveOut(DirectiveSummary):
    season: int
    meeting_id: int | None
    body: str | None
    source: str | None
    issued_on: date
    track: str
    programme_track: str
    supporting_entities: list[str]
    tags: list[str]
    process_model_key: str | None
    created_by: str
    created_at: datetime
    launched_by: str | None
    launched_at: datetime | None
    ended_at: datetime | None
    current_steps: list[str]
    current_due_at: datetime | None
    escalation_level: int
    extension_count: int
    completed_on_time: bool | None
    incident: str | None


class DirectiveLaunched(DirectiveOut):
    open_steps: list[OpenStep] = Field(
        default_factory=list, description="The steps its launch opened, each with its form (none for a draft): "
        "the first step can be completed without reading the inbox.")


class StepOut(BaseModel):
    id: int
    element_id: str
    name: str
    name_ar: str | None
    name_en: str | None
    assignee_role: str | None
    assignee_entity: str | None
    due_at: datetime | None
    overdue: bool
    status: str
    claimed_by: str | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    progress_percent: int | None
    progress_note: str | None
    progress_at: datetime | None


class OpenStep(StepOut):
    """An open step as a launch or a completion answers with it: enough to complete it without asking."""
    instance_id: int
    form_schema: dict[str, Any] | None = Field(description="JSON Schema of the data `complete` expects.")
    can_act: bool = Field(description="Whether the caller may claim, report on or complete this step.")


class EvidenceOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    directive_id: int | None
    work_item_id: int | None
    download_url: str


class EscalationOut(BaseModel):
    id: int
    level: int
    reason: str
    target_role: str
    entity: str | None
    element_id: str
    status: str
    note: str | None
    raised_at: datetime
    age_seconds: int
    resolved_action: str | None
    resolution_note: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    directive: DirectiveSummary | None


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]


class DirectiveDetail(DirectiveOut):
    steps: list[StepOut] = Field(description="The open steps (work items) of the running process.")
    escalations: list[EscalationOut]
    evidence: list[EvidenceOut]
    timeline: list[AuditEventOut] = Field(description="What happened, from the audit trail, oldest first.")
