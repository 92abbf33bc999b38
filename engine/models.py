"""Every table of the engine, imported in one place for Alembic."""

from engine.audit import AuditEvent, AuditHead
from engine.db import Base
from engine.directives import Directive, DirectiveSequence, DirectiveTag
from engine.entities import Entity
from engine.escalations import Escalation
from engine.evidence import Evidence
from engine.feedback import FeedbackItem, FeedbackTag, PublicRateLimit
from engine.instances import ProcessInstance
from engine.login_attempts import LoginAttempt
from engine.meetings import Meeting, MeetingDocument
from engine.notifications import Delivery, Notification
from engine.process_models import ProcessModel
from engine.reports.runs import ReportRun
from engine.seasons import Season
from engine.users import User
from engine.work_items import WorkItem

__all__ = [
    "AuditEvent",
    "AuditHead",
    "Base",
    "Delivery",
    "Directive",
    "DirectiveSequence",
    "DirectiveTag",
    "Entity",
    "Escalation",
    "Evidence",
    "FeedbackItem",
    "FeedbackTag",
    "LoginAttempt",
    "Meeting",
    "MeetingDocument",
    "Notification",
    "ProcessInstance",
    "ProcessModel",
    "PublicRateLimit",
    "ReportRun",
    "Season",
    "User",
    "WorkItem",
]
