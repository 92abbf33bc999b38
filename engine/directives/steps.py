"""A person's actions on a step (work item) short of completing it: claim it, give it back, report
progress. Completion changes the process and lives in `engine.work.instances.complete_task`.

Each action locks the step's instance first (one writer per instance, as for completion), reads the
step afresh, refuses a step that is no longer open, and records its audit event. The functions
live here rather than in `engine.work.work_items` because they need `engine.work.instances`, which itself
imports `engine.work.work_items`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, object_session

from engine.directives import access
from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, FieldIssue, InvalidInput, NotFound
from engine.people import users
from engine.storage import audit
from engine.storage.db import MAX_ID
from engine.work import instances
from engine.work.work_items import OPEN, WorkItem

MAX_NOTE = 2000
PROGRESS_RANGE = N_("progress is a whole percentage from 0 to 100")
NOTE_TOO_LONG = N_("a progress note has at most %(limit)s characters")


def workable(session: Session, user: Any, item_id: int) -> WorkItem:
    """The step, read afresh under its instance's lock, if the user may work it (NotFound if they may not
    see it, Forbidden if it is addressed to another entity or role). What every writer of a step starts with."""
    if not 0 < item_id <= MAX_ID:
        raise NotFound(N_("no step %(step)s"), params={"step": str(item_id)})
    item, _ = instances.lock_item(session, item_id)  # one writer per instance; before any row that refers to it
    if not access.can_see_item(session, user, item):
        raise NotFound(N_("no step %(step)s"), params={"step": str(item_id)})
    if not access.can_act_on_item(user, item, access.entity_code(session, user)):
        raise access.Forbidden(N_("this step is addressed to another entity or role"))
    return item


def claim(session: Session, item_id: int, actor: str) -> WorkItem:
    """Take a step: others see who works on it; claiming it again is harmless."""
    item = _locked_open_item(session, item_id)
    require_not_claimed_by_other(item, actor)
    if item.claimed_by is None:
        item.claimed_by = actor
        audit.record(session, actor, "step.claimed", instances.subject(item.instance_id),
                     {"work_item": item.id, "element": item.element_id})
    session.flush()
    return item


def release(session: Session, item_id: int, actor: str, *, force: bool = False) -> WorkItem:
    """Give a claimed step back; only its claimant may, unless `force` (an administrator)."""
    item = _locked_open_item(session, item_id)
    if not force:
        require_not_claimed_by_other(item, actor)
    if item.claimed_by is not None:
        audit.record(session, actor, "step.released", instances.subject(item.instance_id),
                     {"work_item": item.id, "element": item.element_id, "was_claimed_by": item.claimed_by})
        item.claimed_by = None
    session.flush()
    return item


def require_not_claimed_by_other(item: WorkItem, actor: str) -> None:
    """Refuse (`Conflict`) when someone other than `actor` has claimed the step."""
    if item.claimed_by not in (None, actor):
        claimant = users.display_name(object_session(item), item.claimed_by)
        raise Conflict(N_("step %(step)s is claimed by %(actor)s"), params={"step": str(item.id), "actor": claimant})


def record_progress(session: Session, item_id: int, actor: str, percent: int, note: str | None,
                    *, evidence_ids: list[int] | None = None) -> WorkItem:
    """Report how far the work on an open step is (0-100 %), with an optional note and evidence ids."""
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise InvalidInput(PROGRESS_RANGE, fields=[FieldIssue("percent", "maximum", PROGRESS_RANGE)])
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(NOTE_TOO_LONG, params={"limit": MAX_NOTE},
                           fields=[FieldIssue("note", "max-length", NOTE_TOO_LONG, {"limit": MAX_NOTE})])
    item = _locked_open_item(session, item_id)
    item.progress_percent, item.progress_note, item.progress_at = percent, (note or "").strip() or None, clock.now()
    session.flush()
    audit.record(session, actor, "step.progress", instances.subject(item.instance_id),
                 {"work_item": item.id, "element": item.element_id, "percent": percent, "note": item.progress_note,
                  "evidence": evidence_ids or []})
    return item


def _locked_open_item(session: Session, item_id: int) -> WorkItem:
    item, _ = instances.lock_item(session, item_id)  # one writer per instance, as for completion
    if item.status != OPEN:
        raise instances.no_longer_open(session, item)
    return item
