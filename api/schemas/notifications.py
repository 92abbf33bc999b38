"""The caller's in-app notifications: what the bell counts and the notification centre lists."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class NotificationLinks(BaseModel):
    """Where the reader acts on it: their open step if the process has one for them, else the directive."""

    step: str | None = Field(description="The step's API address (`/api/v1/tasks/{id}`), if one is open for you.")
    directive: str | None = Field(description="The directive's API address (`/api/v1/directives/{id}`).")


class NotificationOut(BaseModel):
    id: int = Field(description="The in-app delivery's id: mark it read with POST /notifications/{id}/read.")
    template: str = Field(examples=["reminder"])
    subject: str
    body: str = Field(description="Plain text, in the caller's language.")
    created_at: datetime
    read: bool
    read_at: datetime | None
    step_id: int | None
    directive_id: int | None
    links: NotificationLinks


class UnreadCount(BaseModel):
    unread: int = Field(ge=0, description="How many of the caller's in-app notifications are unread.")


class MarkedRead(BaseModel):
    marked: int = Field(ge=0, description="How many unread notifications were marked read now.")
