"""Every table of the engine, imported in one place for Alembic and for `create_all` in tests."""

from engine.db import Base
from engine.escalations import Escalation
from engine.instances import ProcessInstance
from engine.notifications import Notification
from engine.process_models import ProcessModel
from engine.work_items import WorkItem

__all__ = ["Base", "Escalation", "Notification", "ProcessInstance", "ProcessModel", "WorkItem"]
