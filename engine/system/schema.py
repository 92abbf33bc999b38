"""Every table of the engine, imported in one place for Alembic."""

from sqlalchemy import Index

from engine.bpmn.decision_tables import DecisionTable
from engine.bpmn.process_models import ProcessModel
from engine.calendar.seasons import Season
from engine.directives.directives import Directive, DirectiveSequence, DirectiveTag
from engine.directives.evidence import Evidence
from engine.directives.meetings import Meeting, MeetingDocument
from engine.directives.tallies import Tally
from engine.feedback import FeedbackItem, FeedbackTag, PublicRateLimit
from engine.people.entities import Entity
from engine.people.login_attempts import LoginAttempt
from engine.people.users import User
from engine.reports.runs import ReportRun
from engine.storage.audit import AuditEvent, AuditHead
from engine.storage.db import Base
from engine.storage.file_store import FileBlob, FileChunk
from engine.system.import_jobs import ImportJob
from engine.work.escalation_timers import SetEscalationTimer
from engine.work.escalations import Escalation
from engine.work.instances import ProcessInstance
from engine.work.notifications import Delivery, Notification
from engine.work.step_figures import StepTally
from engine.work.work_items import WorkItem

# Indexes added after the first release (migration 0002), found by tests/test_query_plans.py.
Index("ix_directive_created", Directive.created_at, Directive.id)
Index("ix_escalation_board", Escalation.status, Escalation.level.desc(), Escalation.raised_at, Escalation.id)
Index("ix_work_item_inbox_entity_due", WorkItem.assignee_entity, WorkItem.status, WorkItem.due_at, WorkItem.id,
      postgresql_include=["assignee_role"])
Index("ix_pilgrim_feedback_figures", FeedbackItem.service, FeedbackItem.rating, FeedbackItem.entity_id)  # 0007
for _column in (Directive.reference_folded, Directive.title_folded, Directive.title_en_folded,
                FeedbackItem.text_ar_folded, FeedbackItem.text_en_folded, Meeting.title_ar_folded,
                Meeting.title_en_folded, User.username_folded, User.full_name_folded, User.email_folded):
    # PostgreSQL only: trigram indexes for the text searches' LIKE '%folded text%' (pg_trgm, migration 0011,
    # over the folded twins of the searched columns); SQLite's FTS5 tables are not in the metadata:
    # engine/foundation/text_search.py.
    Index(f"ix_{_column.table.name}_{_column.key}_trgm", _column, postgresql_using="gin",
          postgresql_ops={_column.key: "gin_trgm_ops"}).ddl_if(dialect="postgresql")
del _column

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
    "SetEscalationTimer",
    "StepTally",
    "Tally",
    "User",
    "WorkItem",
]
