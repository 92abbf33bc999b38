"""Users and their roles; passwords are stored only as Argon2 hashes."""

from __future__ import annotations

import re
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine import clock
from engine.db import Base, UTCDateTime
from engine.entities import Entity, get_by_code
from engine.errors import Conflict, InvalidInput, NotFound
from engine.roles import ENTITY_USER, ROLES

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,59}$")
_hasher = PasswordHasher()
LANGUAGES = ("ar", "en")


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

    entity: Mapped[Entity | None] = relationship(lazy="joined")


def create_user(session: Session, username: str, password: str, role: str, *, full_name: str = "",
                email: str | None = None, entity_code: str | None = None, language: str = "ar") -> User:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidInput("a username is 2-60 lowercase letters, digits, dots, dashes or underscores")
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    if not isinstance(password, str) or len(password) < 10:
        raise InvalidInput("a password has at least 10 characters")
    if language not in LANGUAGES:
        raise InvalidInput("language is ar or en")
    if role == ENTITY_USER and not entity_code:
        raise InvalidInput("an entity user belongs to an entity")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username!r} is taken")
    entity = get_by_code(session, entity_code) if entity_code else None
    user = User(username=username, full_name=full_name or username, email=email, role=role,
                entity_id=entity.id if entity else None, language=language,
                password_hash=_hasher.hash(password), active=True, created_at=clock.now())
    session.add(user)
    session.flush()
    return user


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
        raise NotFound(f"no user {username!r}")
    return user


def users_for(session: Session, *, role: str | None = None, entity_code: str | None = None) -> list[User]:
    """Active users who should hear about something addressed to a role and/or an entity."""
    query = select(User).where(User.active.is_(True))
    if entity_code is not None:
        query = query.join(Entity, User.entity_id == Entity.id).where(Entity.code == entity_code)
    if role is not None:
        query = query.where(User.role == role)
    return list(session.scalars(query.order_by(User.id)))
