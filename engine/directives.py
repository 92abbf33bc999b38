"""Directives: the unit of tracking. Each launched directive runs one BPMN instance; its status,
current steps, due moment and escalation level are kept in indexed columns, updated in the same
transaction as every change of its instance, so no question about directives loads workflow state.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import Date

from engine.db import Base, JSONType, UTCDateTime
from engine.entities import Entity

KINDS = ("decision", "circular", "directive", "recommendation")
TRACKS = ("business", "technology", "human_resources")
PROGRAMME_TRACKS = ("baraa", "tansiq", "none")
PRIORITIES = ("normal", "high", "urgent")
DRAFT, ACTIVE, COMPLETED, CANCELLED = "draft", "active", "completed", "cancelled"
STATUSES = (DRAFT, ACTIVE, COMPLETED, CANCELLED)

directive_supporting_entity = Table(
    "directive_supporting_entity",
    Base.metadata,
    Column("directive_id", ForeignKey("directive.id", ondelete="CASCADE"), primary_key=True),
    Column("entity_id", ForeignKey("entity.id"), primary_key=True, index=True),
)


class DirectiveTag(Base):
    __tablename__ = "directive_tag"

    directive_id: Mapped[int] = mapped_column(ForeignKey("directive.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class DirectiveSequence(Base):
    """The last number given in each Hijri year, for references like 1447/0042."""

    __tablename__ = "directive_sequence"

    hijri_year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer)


class Directive(Base):
    __tablename__ = "directive"
    __table_args__ = (
        Index("ix_directive_register", "season_id", "status", "priority"),
        Index("ix_directive_entity_status", "responsible_entity_id", "status", "current_due_at"),
        Index("ix_directive_escalated", "escalation_level", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("season.id"), index=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meeting.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(500))
    title_en: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(300))
    issued_on: Mapped[date] = mapped_column(Date)
    track: Mapped[str] = mapped_column(String(20))
    programme_track: Mapped[str] = mapped_column(String(10))
    priority: Mapped[str] = mapped_column(String(10))
    responsible_entity_id: Mapped[int] = mapped_column(ForeignKey("entity.id"))
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    process_model_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    launched_by: Mapped[str | None] = mapped_column(String(200))
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Projection of the running instance, kept current in the same transaction as each change:
    current_steps: Mapped[list[str]] = mapped_column(JSONType, default=list)
    current_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    completed_on_time: Mapped[bool | None] = mapped_column()
    incident: Mapped[str | None] = mapped_column(String(500))

    responsible_entity: Mapped[Entity] = relationship(lazy="joined", foreign_keys=[responsible_entity_id])
    supporting_entities: Mapped[list[Entity]] = relationship(secondary=directive_supporting_entity, lazy="selectin")
    tags: Mapped[list[DirectiveTag]] = relationship(lazy="selectin", cascade="all, delete-orphan")
