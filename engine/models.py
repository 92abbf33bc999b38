"""Every table of the engine, imported in one place for Alembic."""

from sqlalchemy import Index

from engine.audit import AuditEvent, AuditHead
from engine.db import Base
from engine.decision_tables import DecisionTable
from engine.directives import Directive, DirectiveSequence, DirectiveTag
from engine.entities import Entity
from engine.escalations import Escalation
from engine.evidence import Evidence
from engine.feedback import FeedbackItem, FeedbackTag, PublicRateLimit
from engine.file_store import FileBlob, FileChunk
from engine.import_jobs import ImportJob
from engine.instances import ProcessInstance
from engine.login_attempts import LoginAttempt
from engine.meetings import Meeting, MeetingDocument
from engine.notifications import Delivery, Notification
from engine.process_models import ProcessModel
from engine.reports.runs import ReportRun
from engine.seasons import Season
from engine.tallies import Tally
from engine.users import User
from engine.work_items import WorkItem

# Indexes added after the first release (migration 0002), found by tests/test_query_plans.py.
Index("ix_directive_created", Directive.created_at, Directive.id)
Index("ix_escalation_board", Escalation.status, Escalation.level.desc(), Escalation.raised_at, Escalation.id)
Index("ix_work_item_inbox_entity_due", WorkItem.assignee_entity, WorkItem.status, WorkItem.due_at, WorkItem.id,
      postgresql_include=["assignee_role"])
Index("ix_pilgrim_feedback_figures", FeedbackItem.service, FeedbackItem.rating, FeedbackItem.entity_id)  # 0007
for _name, _column in (("ix_directive_reference_trgm", Directive.reference),
                       ("ix_directive_title_trgm", Directive.title),
                       ("ix_directive_title_en_trgm", Directive.title_en),
                       ("ix_pilgrim_feedback_text_ar_trgm", FeedbackItem.text_ar),  # migration 0007
                       ("ix_pilgrim_feedback_text_en_trgm", FeedbackItem.text_en)):
    # PostgreSQL only: trigram indexes for the text searches' ILIKE '%text%' (pg_trgm); SQLite's FTS5
    # tables (migration 0007) are not in the metadata: engine/text_search.py.
    Index(_name, _column, postgresql_using="gin", postgresql_ops={_column.key: "gin_trgm_ops"}).ddl_if(
        dialect="postgresql")
del _name, _column

__all__ = [
    "AuditEvent",
    "AuditHead",
    "Base",
    "DecisionTable",
    "Delivery",
    "Directive",
    "DirectiveSequence",
    "DirectiveTag",
    "Entity",
    "Escalation",
    "Evidence",
    "FeedbackItem",
    "FeedbackTag",
    "FileBlob",
    "FileChunk",
    "ImportJob",
    "LoginAttempt",
    "Meeting",
    "MeetingDocument",
    "Notification",
    "ProcessInstance",
    "ProcessModel",
    "PublicRateLimit",
    "ReportRun",
    "Season",
    "Tally",
    "User",
    "WorkItem",
]
