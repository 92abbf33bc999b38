"""Operations the API needs that belong in the engine but are not there yet.

Each function here is written as an engine function would be (a session, plain arguments, engine
errors, an audit event) so it can move as is: `claim`, `release` and `record_progress` into
`engine/work_items.py` (they lock the instance like `instances.complete_task`), `update_user` and
`revoke_tokens` into `engine/users.py`, `list_seasons` into `engine/seasons.py`, `list_users` into
`engine/users.py`. Nothing here imports web code.
"""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, clock, instances, work_items
from engine.entities import Entity
from engine.errors import Conflict, InvalidInput, NotFound
from engine.seasons import Season
from engine.users import LANGUAGES, User
from engine.work_items import OPEN, WorkItem

_hasher = PasswordHasher()


def _locked_open_item(session: Session, item_id: int) -> WorkItem:
    item = work_items.get_work_item(session, item_id)
    instances.lock(session, item.instance_id)  # one writer per instance, as for completion
    session.refresh(item)
    if item.status != OPEN:
        by = f" by {item.completed_by}" if item.completed_by else ""
        raise Conflict(f"step {item.id} is already {item.status}{by}")
    return item


def claim(session: Session, item_id: int, actor: str) -> WorkItem:
    """Take a step: others see who works on it; claiming it again is harmless."""
    item = _locked_open_item(session, item_id)
    if item.claimed_by not in (None, actor):
        raise Conflict(f"step {item.id} is claimed by {item.claimed_by}")
    if item.claimed_by is None:
        item.claimed_by = actor
        audit.record(session, actor, "step.claimed", instances.subject(item.instance_id),
                     {"work_item": item.id, "element": item.element_id})
    session.flush()
    return item


def release(session: Session, item_id: int, actor: str, *, force: bool = False) -> WorkItem:
    item = _locked_open_item(session, item_id)
    if item.claimed_by is not None and item.claimed_by != actor and not force:
        raise Conflict(f"step {item.id} is claimed by {item.claimed_by}")
    if item.claimed_by is not None:
        audit.record(session, actor, "step.released", instances.subject(item.instance_id),
                     {"work_item": item.id, "element": item.element_id, "was_claimed_by": item.claimed_by})
        item.claimed_by = None
    session.flush()
    return item


def require_not_claimed_by_other(item: WorkItem, actor: str) -> None:
    if item.claimed_by not in (None, actor):
        raise Conflict(f"step {item.id} is claimed by {item.claimed_by}")


def record_progress(session: Session, item_id: int, actor: str, percent: int, note: str | None,
                    *, evidence_ids: list[int] | None = None) -> WorkItem:
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise InvalidInput("progress is a whole percentage from 0 to 100")
    if note is not None and len(note) > 2000:
        raise InvalidInput("a progress note has at most 2,000 characters")
    item = _locked_open_item(session, item_id)
    item.progress_percent, item.progress_note, item.progress_at = percent, (note or "").strip() or None, clock.now()
    session.flush()
    audit.record(session, actor, "step.progress", instances.subject(item.instance_id),
                 {"work_item": item.id, "element": item.element_id, "percent": percent, "note": item.progress_note,
                  "evidence": evidence_ids or []})
    return item


def get_user_by_id(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def revoke_tokens(session: Session, user: User, actor: str) -> None:
    """Every token issued to the user until now stops working at once."""
    user.tokens_valid_after = clock.now()
    session.flush()
    audit.record(session, actor, "user.tokens_revoked", f"user:{user.username}", {})


def update_user(session: Session, username: str, actor: str, **changes: Any) -> User:
    user = session.scalar(select(User).where(User.username == username).with_for_update(of=User))
    if user is None:
        raise NotFound(f"no user {username!r}")
    recorded: dict[str, Any] = {}
    if changes.get("language") is not None:
        if changes["language"] not in LANGUAGES:
            raise InvalidInput("language is ar or en")
        user.language = recorded["language"] = changes["language"]
    if changes.get("full_name") is not None:
        user.full_name = recorded["full_name"] = changes["full_name"].strip() or user.username
    if "email" in changes and changes["email"] is not None:
        user.email = recorded["email"] = changes["email"] or None
    if changes.get("password") is not None:
        if len(changes["password"]) < 10:
            raise InvalidInput("a password has at least 10 characters")
        user.password_hash = _hasher.hash(changes["password"])
        user.tokens_valid_after = clock.now()
        recorded["password"] = "changed"
    if changes.get("active") is not None and changes["active"] != user.active:
        user.active = recorded["active"] = bool(changes["active"])
        if not user.active:
            user.tokens_valid_after = clock.now()
    session.flush()
    if recorded:
        audit.record(session, actor, "user.updated", f"user:{user.username}", recorded)
    return user


def list_users(session: Session, *, role: str | None = None, entity_code: str | None = None,
               limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
    from sqlalchemy import func

    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    if entity_code is not None:
        query = query.join(Entity, User.entity_id == Entity.id).where(Entity.code == entity_code)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = list(session.scalars(query.order_by(User.username).limit(limit).offset(offset)))
    return rows, total


def list_seasons(session: Session) -> list[Season]:
    return list(session.scalars(select(Season).order_by(Season.hijri_year.desc())))
