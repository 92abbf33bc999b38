"""Users and their roles; passwords are stored only as Argon2 hashes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Connection, ForeignKey, Integer, Row, String, Text, bindparam, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine.foundation import clock, text_search
from engine.foundation.errors import N_, Conflict, FieldProblems, InvalidInput, NotFound
from engine.people.entities import Entity, get_by_code
from engine.people.roles import ENTITY_USER, ROLES
from engine.storage import audit
from engine.storage.db import Base, UTCDateTime

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,59}$")
_hasher = PasswordHasher()
LANGUAGES = ("ar", "en")
MIN_PASSWORD = 10


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(40), index=True)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entity.id"), index=True)
    language: Mapped[str] = mapped_column(String(2), default="ar")
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the users' search compares (engine/foundation/text_search.py), written with every write of its column.
    username_folded: Mapped[str | None] = mapped_column(Text, deferred=True)
    full_name_folded: Mapped[str | None] = mapped_column(Text, deferred=True)
    email_folded: Mapped[str | None] = mapped_column(Text, deferred=True)

    entity: Mapped[Entity | None] = relationship(lazy="joined")


text_search.fold_on_write(User.__table__, ("username", "full_name", "email"))


# Built once: every request reads its caller, and building and keying this statement took three times
# as long as running it on SQLite (200 of 270 µs).
_PROFILE = (
    select(User.id, User.username, User.full_name, User.email, User.role, User.entity_id, User.language,
           User.active, User.tokens_valid_after, Entity.code.label("entity_code"),
           Entity.name_ar.label("entity_name_ar"), Entity.name_en.label("entity_name_en"))
    .outerjoin(Entity, Entity.id == User.entity_id).where(User.id == bindparam("user_id"))
)


def profile(connection: Connection, user_id: int) -> Row[*tuple[Any, ...]] | None:
    """What a request needs to know of its caller, in one light query (no ORM objects)."""
    return connection.execute(_PROFILE, {"user_id": user_id}).first()


def subject(username: str) -> str:
    return f"user:{username}"


def create_user(session: Session, username: str, password: str, role: str, *, full_name: str = "",
                email: str | None = None, entity_code: str | None = None, language: str = "ar",
                actor: str = "system") -> User:
    """Create an active user; `actor` (who creates it) is recorded in the audit trail."""
    problems = FieldProblems()
    if not isinstance(username, str) or not _USERNAME.match(username):
        problems.add("username", "pattern", N_("a username is 2-60 lowercase letters, digits, dots, dashes or "
                                               "underscores"))
    if role not in ROLES:
        problems.add("role", "enum", N_("unknown role %(value)s (known: %(known)s)"), value=repr(role),
                     known=", ".join(ROLES))
    with problems.checking("password"):
        _check_password(password)
    if language not in LANGUAGES:
        problems.add("language", "enum", N_("language is ar or en"))
    if role == ENTITY_USER and not entity_code:
        problems.add("entity", "required", N_("an entity user belongs to an entity"))
    problems.raise_if_any()
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(N_("the username %(username)s is taken"), params={"username": repr(username)})
    entity = get_by_code(session, entity_code) if entity_code else None
    user = User(username=username, full_name=full_name or username, email=email, role=role,
                entity_id=entity.id if entity else None, language=language,
                password_hash=_hasher.hash(password), active=True, created_at=clock.now())
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", subject(user.username),
                 {"role": user.role, "entity": entity.code if entity else None})
    return user


def update_user(session: Session, username: str, actor: str, **changes: Any) -> User:
    """Change a user's language, name, email, password or whether they are active.

    A new password or a deactivation revokes every token issued to the user until now. The audit
    event names what changed; of a password it records only that it changed.
    """
    user = session.scalar(select(User).where(User.username == username).with_for_update(of=User))
    if user is None:
        raise NotFound(N_("no user %(username)s"), params={"username": repr(username)})
    recorded: dict[str, Any] = {}
    if changes.get("language") is not None:
        if changes["language"] not in LANGUAGES:
            raise InvalidInput(N_("language is ar or en"))
        user.language = recorded["language"] = changes["language"]
    if changes.get("full_name") is not None:
        user.full_name = recorded["full_name"] = changes["full_name"].strip() or user.username
    if changes.get("email") is not None:
        user.email = recorded["email"] = changes["email"] or None
    if changes.get("password") is not None:
        _check_password(changes["password"])
        user.password_hash = _hasher.hash(changes["password"])
        user.tokens_valid_after = clock.now()
        recorded["password"] = "changed"  # never the password or its hash
    if changes.get("active") is not None and changes["active"] != user.active:
        user.active = recorded["active"] = bool(changes["active"])
        if not user.active:
            user.tokens_valid_after = clock.now()
    session.flush()
    if recorded:
        audit.record(session, actor, "user.updated", subject(user.username), recorded)
    return user


def revoke_tokens(session: Session, user: User, actor: str) -> None:
    """Every token issued to the user until now stops working at once."""
    user.tokens_valid_after = clock.now()
    session.flush()
    audit.record(session, actor, "user.tokens_revoked", subject(user.username), {})


def _check_password(password: Any) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(N_("a password has at least %(limit)s characters"), params={"limit": MIN_PASSWORD})


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        _hasher.hash(password)  # same cost whether or not the user exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(N_("no user %(username)s"), params={"username": repr(username)})
    return user


def get_user_by_id(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(N_("no user %(username)s"), params={"username": str(user_id)})
    return user


def list_users(session: Session, *, role: str | None = None, entity_code: str | None = None,
               text: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
    """One page of users by username, and how many match in all; with `text`, those whose username, name or
    email contains it (folded: engine/foundation/text_search.py)."""
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    wanted = text_search.search_text(text)
    if wanted:
        query = query.where(text_search.contains(User.id, [User.username_folded, User.full_name_folded,
                                                           User.email_folded], wanted))
    if entity_code is not None:
        query = query.join(Entity, User.entity_id == Entity.id).where(Entity.code == entity_code)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = list(session.scalars(query.order_by(User.username).limit(limit).offset(offset)))
    return rows, total


def users_for(session: Session, *, role: str | None = None, entity_code: str | None = None) -> list[User]:
    """Active users who should hear about something addressed to a role and/or an entity."""
    query = select(User).where(User.active.is_(True))
    if entity_code is not None:
        query = query.join(Entity, User.entity_id == Entity.id).where(Entity.code == entity_code)
    if role is not None:
        query = query.where(User.role == role)
    return list(session.scalars(query.order_by(User.id)))


def display_name(session: Session | None, username: str) -> str:
    """How a refusal names someone who acted: their full name, or the user name of one who is not a user
    (`timer`, `public`) or when there is no session to ask (a step not read from the database)."""
    if session is None:
        return username
    full_name = session.scalar(select(User.full_name).where(User.username == username))
    return (full_name or "").strip() or username


def full_names(session: Session) -> dict[str, str]:
    """Every user's full name by username (a committee's users number in the hundreds), for pages that name
    people (`api.web.people`)."""
    return {username: full_name.strip() or username
            for username, full_name in session.execute(select(User.username, User.full_name))}
