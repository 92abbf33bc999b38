"""Entities: the organisations that execute directives (housing, transport, reception, ...)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, bindparam, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.foundation import clock
from engine.foundation.errors import N_, Conflict, FieldProblems, InvalidInput, NotFound
from engine.storage import audit
from engine.storage.db import Base, UTCDateTime

KINDS = ("service", "government", "operator", "private", "other")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,49}$")


class Entity(Base):
    __tablename__ = "entity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name_ar: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def subject(code: str) -> str:
    return f"entity:{code}"


_NAME_LENGTH = {"name_ar": N_("the entity's Arabic name must be 1-200 characters"),
                "name_en": N_("the entity's English name must be 1-200 characters")}
_NAME_CHARACTERS = {
    "name_ar": N_("the entity's Arabic name may not hold control or direction-override characters"),
    "name_en": N_("the entity's English name may not hold control or direction-override characters"),
}


def create_entity(session: Session, code: str, name_ar: str, name_en: str, kind: str = "service",
                  email: str | None = None, *, actor: str = "system") -> Entity:
    """Create an active entity; `actor` (who creates it) is recorded in the audit trail."""
    problems = FieldProblems()
    if not isinstance(code, str) or not _CODE.match(code):
        problems.add("code", "pattern", N_("an entity code is 2-50 lowercase letters, digits or _, starting with a "
                                           "letter: %(code)s"), code=repr(code))
    if kind not in KINDS:
        problems.add("kind", "enum", N_("unknown entity kind %(value)s (known: %(known)s)"), value=repr(kind),
                     known=", ".join(KINDS))
    for name, value in (("name_ar", name_ar), ("name_en", name_en)):
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            problems.add(name, "length", _NAME_LENGTH[name])
        elif any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in value):
            problems.add(name, "characters", _NAME_CHARACTERS[name])
    problems.raise_if_any()
    if session.scalar(select(Entity.id).where(Entity.code == code)) is not None:
        raise Conflict(N_("an entity with code %(code)s exists already"), params={"code": repr(code)})
    entity = Entity(code=code, name_ar=name_ar.strip(), name_en=name_en.strip(), kind=kind, email=email,
                    active=True, created_at=clock.now())
    session.add(entity)
    session.flush()
    audit.record(session, actor, "entity.created", subject(entity.code),
                 {"name_ar": entity.name_ar, "name_en": entity.name_en, "kind": entity.kind})
    return entity


def get_by_code(session: Session, code: str) -> Entity:
    entity = session.scalar(select(Entity).where(Entity.code == code))
    if entity is None:
        raise NotFound(N_("no entity %(code)s"), params={"code": repr(code)})
    return entity


_BY_CODES = select(Entity).where(Entity.code.in_(bindparam("codes", expanding=True)))


def require_active(session: Session, codes: list[str]) -> list[Entity]:
    """Resolve entity codes, refusing unknown or inactive ones (all named in one message)."""
    found = {e.code: e for e in session.scalars(_BY_CODES, {"codes": codes})}
    unknown = [c for c in codes if c not in found or not found[c].active]
    if unknown:
        raise InvalidInput(N_("unknown entity: %(codes)s"), params={"codes": ", ".join(map(str, unknown))})
    return [found[c] for c in codes]


def list_entities(session: Session) -> list[Entity]:
    return list(session.scalars(select(Entity).order_by(Entity.code)))


@dataclass(frozen=True)
class EntityRef:
    """An entity as reports and pages name it."""

    code: str
    name_ar: str
    name_en: str


def entity_refs(session: Session) -> dict[int, EntityRef]:
    return {row.id: EntityRef(row.code, row.name_ar, row.name_en)
            for row in session.execute(select(Entity.id, Entity.code, Entity.name_ar, Entity.name_en))}


def entity_refs_by_code(session: Session) -> dict[str, EntityRef]:
    return {ref.code: ref for ref in entity_refs(session).values()}


def unknown_entity(code: str | None) -> EntityRef:
    code = code or "-"
    return EntityRef(code, code, code)
