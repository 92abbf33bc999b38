"""The operations view: instances, incidents, messages and migrations (administrators only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.schemas.common import FormData, Id, Strict, Text, example
from api.schemas.directives import AuditEventOut


class InstanceOut(BaseModel):
    id: int
    model: str
    version: int
    business_key: str | None
    status: str = Field(description="running, completed, cancelled or incident")
    business_status: str | None
    started_at: datetime
    started_by: str
    updated_at: datetime
    ended_at: datetime | None
    next_timer_at: datetime | None
    incident_element: str | None
    incident_message: str | None
    incident_at: datetime | None
    directive_id: int | None


class WaitingTaskOut(BaseModel):
    element_id: str
    name: str
    state: str = Field(description="ready, waiting or started")
    kind: str


class OpenStepOut(BaseModel):
    id: int
    element_id: str
    name: str
    assignee_entity: str | None
    assignee_role: str | None
    due_at: datetime | None


class InstanceDetail(InstanceOut):
    done: list[str] = Field(description="Elements passed (the diagram marks them done).")
    current: list[str] = Field(description="Elements where a token is: ready, waiting or started.")
    tokens: list[WaitingTaskOut]
    waiting_messages: list[str]
    open_steps: list[OpenStepOut]
    variables: dict[str, Any] = Field(description="The process variables where its tokens are.")
    history: list[AuditEventOut] = Field(description="The instance's audit trail, oldest first (at most 500).")


class RetryRequest(Strict):
    model_config = example({"variables": {"responsible_entity": "reception", "deadline": "PT48H"}})

    variables: FormData | None = Field(
        default=None, description="The corrected variables, whole (a variable left out is removed). Without "
        "them the incident is retried as it is.")


class MessageRequest(Strict):
    model_config = example({"name": "extension_requested", "business_key": "1447-0012",
        "payload": {"new_deadline": "PT24H", "reason": "تأخر توريد المستلزمات"}})

    name: Annotated[Text, Field(min_length=1, max_length=200)]
    business_key: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    correlation: FormData | None = Field(
        default=None, description="Values the waiting instance's variables must equal (Camunda's correlation keys).")
    payload: FormData = Field(default_factory=dict, description="What the message carries, validated like a form.")
    all: bool = Field(default=False, description="Deliver to every matching instance; without it exactly one "
                      "must wait, else 409.")


class MessageOut(BaseModel):
    delivered: list[InstanceOut]


class MigrationRequest(Strict):
    model_config = example({"to_version": 3, "instance_ids": [101, 102], "dry_run": True})

    to_version: Annotated[int, Field(ge=1, le=2_147_483_647)]
    instance_ids: Annotated[list[Id], Field(min_length=1, max_length=1000)] | None = Field(
        default=None, description="Only these instances of the version (default: all its running and in-incident "
        "instances).")
    dry_run: bool = Field(default=True, description="Say what would move and what cannot, changing nothing.")


class InstanceMigrationOut(BaseModel):
    instance_id: int
    business_key: str | None
    possible: bool
    migrated: bool
    moves: list[WaitingTaskOut]
    reasons: list[str] = Field(description="Why it cannot move (empty when it can).")


class MigrationOut(BaseModel):
    dry_run: bool
    from_version: int
    to_version: int
    added: list[str] = Field(description="Elements the new version adds.")
    removed: list[str] = Field(description="Elements the new version no longer has.")
    changed: list[str] = Field(description="Elements whose definition changed.")
    instances: list[InstanceMigrationOut]
    migrated: int
    refused: int


class VersionCountOut(BaseModel):
    version: int
    running: int
    incident: int
