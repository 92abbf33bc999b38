"""Pilgrim feedback (رأي الحاج): what pilgrims say about a service, used to evaluate and improve it.

Feedback comes in two ways:

* over the API, from systems and staff that are signed in (`record`), and
* from a public form without sign-in (`public_intake`), which defends itself: a per-client-address rate
  limit kept in the database (addresses are stored only as keyed hashes), a signed form token that
  must be at least a few seconds and at most a few hours old and is used once, a honeypot field that
  people never fill, length limits, and refusal of links and of bidirectional-override characters.

Each item names a service (housing, transport, reception, departure, other), the entity when known,
a rating from 1 to 5, its text in Arabic or English, and tags (the same tags as directives: see
`engine.directives.tags`). The unit lists and filters them, changes their status and tags, and raises a
draft directive from one or several of them (`raise_directive`: linked, tags carried over). The
daily, periodic and seasonal reports read their figures in `engine.reports.feedback`.

Who may do what: every role that reads all directives reads all feedback; an entity user reads the
feedback about their own entity only; administrators, the secretariat and follow-up officers record
feedback over the API; those and supervisors triage it; raising a directive takes the roles that
create directives.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVarTuple

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    delete,
    false,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine.calendar import seasons
from engine.directives import directives
from engine.directives.tags import clean_tags
from engine.foundation import clock, text_search
from engine.foundation.errors import N_, Conflict, InvalidInput, NotFound, TansiqError
from engine.people import entities
from engine.people.entities import Entity
from engine.people.roles import ADMIN, ENTITY_USER, FOLLOW_UP_OFFICER, SECRETARIAT, SUPERVISOR, role_word
from engine.storage import audit
from engine.storage.db import Base, Database, UTCDateTime

if TYPE_CHECKING:
    from engine.directives.access import Actor

_Ts = TypeVarTuple("_Ts")
"""The columns of a query `visible_feedback` narrows (it keeps its shape)."""

SERVICES = ("housing", "transport", "reception", "departure", "other")
SERVICE_NAMES = {
    "housing": ("الإسكان", "Housing"), "transport": ("النقل", "Transport"),
    "reception": ("الاستقبال", "Reception"), "departure": ("المغادرة", "Departure"), "other": ("أخرى", "Other"),
}
PUBLIC, API = "public", "api"
CHANNELS = (PUBLIC, API)
NEW, REVIEWED, RAISED, DISMISSED = "new", "reviewed", "raised", "dismissed"
STATUSES = (NEW, REVIEWED, RAISED, DISMISSED)
LANGUAGES = ("ar", "en")
MAX_TEXT = 4000  # over the API; the public form has its own, lower limit (PublicLimits.max_text)

INTAKE_ROLES = frozenset({ADMIN, SECRETARIAT, FOLLOW_UP_OFFICER})
TRIAGE_ROLES = frozenset({ADMIN, SECRETARIAT, FOLLOW_UP_OFFICER, SUPERVISOR})
RAISE_ACTION = "directive.create"


class FeedbackItem(Base):
    __tablename__ = "pilgrim_feedback"
    __table_args__ = (
        Index("ix_pilgrim_feedback_season_received", "season_id", "received_at"),
        Index("ix_pilgrim_feedback_entity_received", "entity_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("season.id"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    channel: Mapped[str] = mapped_column(String(10))
    service: Mapped[str] = mapped_column(String(20), index=True)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("entity.id"))
    rating: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(2))
    text_ar: Mapped[str | None] = mapped_column(Text)
    text_en: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)
    note: Mapped[str | None] = mapped_column(String(2000))
    submitted_by: Mapped[str] = mapped_column(String(200))
    source_ref: Mapped[str | None] = mapped_column(String(100), unique=True)  # a sending system's own id
    form_nonce: Mapped[str | None] = mapped_column(String(64), unique=True)  # the public form token, used once
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the feedback's search compares (engine/foundation/text_search.py), written with every write of its column.
    text_ar_folded: Mapped[str | None] = mapped_column(Text, deferred=True)
    text_en_folded: Mapped[str | None] = mapped_column(Text, deferred=True)

    entity: Mapped[Entity | None] = relationship(lazy="joined")
    tags: Mapped[list[FeedbackTag]] = relationship(lazy="selectin", cascade="all, delete-orphan",
                                                   order_by="FeedbackTag.tag")

    @property
    def text(self) -> str:
        """The pilgrim's words in the language they wrote in (the other column may hold a translation)."""
        return (self.text_ar if self.language == "ar" else self.text_en) or self.text_ar or self.text_en or ""


text_search.fold_on_write(FeedbackItem.__table__, ("text_ar", "text_en"))


class FeedbackTag(Base):
    __tablename__ = "feedback_tag"

    feedback_id: Mapped[int] = mapped_column(ForeignKey("pilgrim_feedback.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


feedback_directive = Table(
    "feedback_directive",
    Base.metadata,
    Column("feedback_id", ForeignKey("pilgrim_feedback.id", ondelete="CASCADE"), primary_key=True),
    Column("directive_id", ForeignKey("directive.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class PublicRateLimit(Base):
    """How often one client address (as a keyed hash) used the public form: a 10-minute window and a day."""

    __tablename__ = "public_feedback_rate"

    client_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    window_count: Mapped[int] = mapped_column(Integer)
    day_started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    day_count: Mapped[int] = mapped_column(Integer)


TABLES = (FeedbackItem.__table__, FeedbackTag.__table__, feedback_directive, PublicRateLimit.__table__)


def subject(feedback_id: int) -> str:
    return f"feedback:{feedback_id}"


# --- access -----------------------------------------------------------------------------------------------

def can_read(user: Actor) -> bool:
    from engine.directives import access

    return access.reads_all(user) or (user.active and user.role == ENTITY_USER and user.entity_id is not None)


def can_intake(user: Actor) -> bool:
    return user.active and user.role in INTAKE_ROLES


def can_triage(user: Actor) -> bool:
    return user.active and user.role in TRIAGE_ROLES


def can_raise(user: Actor) -> bool:
    from engine.directives import access

    return access.allowed(user, RAISE_ACTION)


def _require(allowed: bool, user: Actor, what: str) -> None:
    from engine.directives import access

    if not allowed:
        raise access.Forbidden(N_("%(role)s may not do this"), params={"role": role_word(user.role)})


def visible_feedback(query: Select[*_Ts], user: Actor) -> Select[*_Ts]:
    """Narrow a query over `FeedbackItem` to what the user may see."""
    from engine.directives import access

    if access.reads_all(user):
        return query
    if user.active and user.role == ENTITY_USER and user.entity_id is not None:
        return query.where(FeedbackItem.entity_id == user.entity_id)
    return query.where(false())


def visible_item(session: Session, user: Actor, feedback_id: int) -> FeedbackItem:
    item = session.scalar(visible_feedback(select(FeedbackItem).where(FeedbackItem.id == feedback_id), user))
    if item is None:
        raise NotFound(N_("no feedback %(feedback)s"), params={"feedback": str(feedback_id)})
    return item


# --- text -------------------------------------------------------------------------------------------------

_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_ALLOWED_FORMAT = {"\u200c", "\u200d", "\u200e", "\u200f", "\u061c"}  # ZWNJ, ZWJ, LRM, RLM, ALM: real writing
_ARABIC_LETTER = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u024f]")
_LINK = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.\-]*://|www\s*\.|"
    r"\b[a-z0-9\-]+(?:\s*\.\s*[a-z0-9\-]+)*\s*\.\s*(?:com|net|org|info|biz|ru|cn|xyz|top|io|co|me|ly|link|click|"
    r"site|online|shop|app|sa|tk|gq|ml|cf|ga|pw|cc|ws|us|uk)\b|[\w.+\-]+@[\w\-]+\.[\w.]+|<\s*a\b|\[url)"
)


class FeedbackRefused(InvalidInput):
    """The submission breaks a rule; `details` name the fields."""

    code = "feedback-refused"


class RateLimited(TansiqError):
    """Too many submissions from one client address; try again after `retry_after` seconds."""

    code = "too-many-requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def clean_text(value: object, field_name: str, *, max_length: int, min_length: int = 1,
               refuse_links: bool = False) -> str:
    """Text as typed, normalised (NFC, trimmed, at most two blank lines), refused when it hides its
    direction (bidirectional overrides and isolates), carries control or invisible format characters,
    carries links (when asked), is too short or too long, or has no letters at all."""
    if not isinstance(value, str):
        raise FeedbackRefused(f"{field_name} is text", details=[{"field": field_name, "message": "not text"}])
    text = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n").strip()
    text = re.sub(r"\n{3,}", "\n\n", text)

    def refuse(message: str) -> FeedbackRefused:
        return FeedbackRefused(f"{field_name}: {message}", details=[{"field": field_name, "message": message}])

    if _BIDI_CONTROLS.search(text):
        raise refuse("direction-override characters are not accepted")
    for ch in text:
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in "\n\t") or (category == "Cf" and ch not in _ALLOWED_FORMAT) \
                or category in ("Co", "Cs", "Cn"):
            raise refuse(f"the character U+{ord(ch):04X} is not accepted")
    if len(text) > max_length:
        raise refuse(f"at most {max_length:,} characters")
    if len(text) < min_length:
        raise refuse(f"at least {min_length} characters")
    if not _ARABIC_LETTER.search(text) and not _LATIN_LETTER.search(text) and not any(c.isalpha() for c in text):
        raise refuse("write a few words")
    if refuse_links:
        folded = unicodedata.normalize("NFKC", text).translate({ord(c): None for c in _ALLOWED_FORMAT})
        if _LINK.search(folded):
            raise refuse("links and e-mail addresses are not accepted")
    return text


def detect_language(text: str) -> str:
    """`ar` when Arabic letters are at least as many as Latin ones, else `en`."""
    return "ar" if len(_ARABIC_LETTER.findall(text)) >= len(_LATIN_LETTER.findall(text)) else "en"


# --- recording --------------------------------------------------------------------------------------------

@dataclass
class NewFeedback:
    """Feedback as a system or a member of staff records it. Give `text` (its language is detected), or
    `text_ar` and/or `text_en` (one of them the pilgrim's words, the other a translation)."""

    service: str
    rating: int
    text: str | None = None
    text_ar: str | None = None
    text_en: str | None = None
    language: str | None = None
    entity: str | None = None
    tags: list[str] = field(default_factory=list)
    received_at: datetime | None = None
    source_ref: str | None = None


def _check_choices(service: object, rating: object) -> list[dict[str, str]]:
    problems = []
    if service not in SERVICES:
        problems.append({"field": "service", "message": f"one of {', '.join(SERVICES)}"})
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        problems.append({"field": "rating", "message": "a whole number from 1 to 5"})
    return problems


_ENTITY_CODE = re.compile(r"^[a-z][a-z0-9_]{1,49}$")


def record(session: Session, new: NewFeedback, actor: str, *, channel: str = API) -> FeedbackItem:
    """Store one feedback item (validated whole first) and record it in the audit trail."""
    if channel not in CHANNELS:
        raise InvalidInput(N_("unknown channel %(value)s"), params={"value": repr(channel)})
    problems = _check_choices(new.service, new.rating)
    if problems:
        raise FeedbackRefused("; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems)
    texts: dict[str, str | None] = {"ar": None, "en": None}
    if new.language is not None and new.language not in LANGUAGES:
        raise FeedbackRefused("language is ar or en", details=[{"field": "language", "message": "ar or en"}])
    original: str | None = None
    if new.text is not None:
        text = clean_text(new.text, "text", max_length=MAX_TEXT)
        original = new.language or detect_language(text)
        texts[original] = text
    for language, given in (("ar", new.text_ar), ("en", new.text_en)):
        if given is not None and given.strip():
            if texts[language] is not None:
                raise FeedbackRefused(f"the {language} text is given twice",
                                      details=[{"field": f"text_{language}", "message": "given twice"}])
            texts[language] = clean_text(given, f"text_{language}", max_length=MAX_TEXT)
    if texts["ar"] is None and texts["en"] is None:
        raise FeedbackRefused("feedback needs its text", details=[{"field": "text", "message": "required"}])
    if original is None:
        original = new.language if new.language and texts[new.language] else ("ar" if texts["ar"] else "en")
    language = original
    now = clock.now()
    received_at = clock.as_utc(new.received_at) if new.received_at else now
    if received_at > now + timedelta(minutes=5):
        raise FeedbackRefused("feedback cannot be received in the future",
                              details=[{"field": "received_at", "message": "in the future"}])
    if new.entity and not (isinstance(new.entity, str) and _ENTITY_CODE.match(new.entity)):
        raise FeedbackRefused(f"unknown entity: {str(new.entity)[:60]!r}",
                              details=[{"field": "entity", "message": "unknown entity"}])
    entity = entities.require_active(session, [new.entity])[0] if new.entity else None
    tags = clean_tags(new.tags or [])
    source_ref = (new.source_ref or "").strip() or None
    if source_ref is not None:
        if len(source_ref) > 100 or "\x00" in source_ref:
            raise InvalidInput("source_ref is at most 100 characters")
        if session.scalar(select(FeedbackItem.id).where(FeedbackItem.source_ref == source_ref)) is not None:
            raise Conflict(N_("feedback %(source)s was recorded already"), params={"source": repr(source_ref)})
    season = seasons.season_for(session, received_at)
    item = FeedbackItem(season_id=season.id, received_at=received_at, channel=channel, service=new.service,
                        entity_id=entity.id if entity else None, entity=entity, rating=new.rating, language=language,
                        text_ar=texts["ar"], text_en=texts["en"], status=NEW, submitted_by=actor[:200],
                        source_ref=source_ref)
    item.tags = [FeedbackTag(tag=t) for t in tags]
    session.add(item)
    session.flush()
    audit.record(session, actor, "feedback.received", subject(item.id), {
        "channel": channel, "service": item.service, "rating": item.rating, "language": language,
        "entity": entity.code if entity else None, "tags": tags, "season": season.hijri_year,
        "length": len(item.text), "source_ref": source_ref,
    })
    return item


# --- the public form --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublicLimits:
    min_seconds: float = 3.0  # a form sent sooner after it was shown was not filled by a person
    max_age_seconds: int = 4 * 3600
    per_window: int = 5
    window_seconds: int = 600
    per_day: int = 30
    min_text: int = 3
    max_text: int = 2000


@dataclass
class PublicSubmission:
    token: str
    service: str
    rating: int
    text: str
    entity: str | None = None
    website: str | None = None  # the honeypot: hidden from people, filled by bots


@dataclass(frozen=True)
class IntakeResult:
    accepted: bool
    feedback_id: int | None = None
    dropped: str | None = None  # why a submission was quietly dropped (for logs and tests, never for the client)


_TOKEN_CONTEXT = b"tansiq/public-feedback-form/v1:"


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, _TOKEN_CONTEXT + payload.encode(), hashlib.sha256).hexdigest()[:40]


def issue_form_token(secret: bytes, now: datetime | None = None) -> str:
    """A token for one public form: when it was shown and a random nonce, signed with the server's secret."""
    moment = now or clock.now()
    payload = f"{int(moment.timestamp() * 1000)}.{secrets.token_hex(12)}"
    return f"{payload}.{_sign(secret, payload)}"


def read_form_token(secret: bytes, token: object, limits: PublicLimits, now: datetime | None = None) -> str:
    """The token's nonce, if it is genuine, old enough and not too old; else `FeedbackRefused`."""
    moment = now or clock.now()

    def refuse(message: str) -> FeedbackRefused:
        return FeedbackRefused(message, details=[{"field": "token", "message": message}])

    if not isinstance(token, str) or len(token) > 200 or token.count(".") != 2:
        raise refuse("the form is not valid; reload it")
    issued, nonce, signature = token.split(".")
    if not hmac.compare_digest(_sign(secret, f"{issued}.{nonce}"), signature) or not issued.isdigit():
        raise refuse("the form is not valid; reload it")
    age = moment.timestamp() - int(issued) / 1000
    if age < limits.min_seconds:
        raise refuse("the form was sent too quickly; take a moment and send it again")
    if age > limits.max_age_seconds:
        raise refuse("the form has expired; reload it")
    return nonce


def client_key(secret: bytes, address: str) -> str:
    """A client address as a keyed hash: limits can be kept without storing anyone's address."""
    return hmac.new(secret, b"tansiq/client:" + (address or "-").encode(), hashlib.sha256).hexdigest()


def hit_rate_limit(session: Session, key: str, limits: PublicLimits, now: datetime | None = None) -> int | None:
    """Count one attempt from `key`; the seconds to wait when it is over a limit, else None."""
    moment = now or clock.now()
    row = session.get(PublicRateLimit, key, with_for_update=True) or _new_rate_limit(session, key, moment)
    window, day = timedelta(seconds=limits.window_seconds), timedelta(days=1)
    if moment - row.window_started_at >= window:
        row.window_started_at, row.window_count = moment, 0
    if moment - row.day_started_at >= day:
        row.day_started_at, row.day_count = moment, 0
    row.window_count += 1
    row.day_count += 1
    session.flush()
    if row.day_count > limits.per_day:
        return max(1, int((row.day_started_at + day - moment).total_seconds()))
    if row.window_count > limits.per_window:
        return max(1, int((row.window_started_at + window - moment).total_seconds()))
    return None


def _new_rate_limit(session: Session, key: str, moment: datetime) -> PublicRateLimit:
    """The locked row of an address seen for the first time (created here, or by a request that came first)."""
    row: PublicRateLimit | None
    try:
        with session.begin_nested():
            row = PublicRateLimit(client_key=key, window_started_at=moment, window_count=0,
                                  day_started_at=moment, day_count=0)
            session.add(row)
            session.flush()
    except IntegrityError:  # another request from the same address created it first: lock theirs
        row = session.get(PublicRateLimit, key, with_for_update=True, populate_existing=True)
    if row is None:
        raise RuntimeError(f"the rate limit row of {key} was created by another request and is gone")
    # a new address: forget addresses not seen for two days (keeps the table small)
    session.execute(delete(PublicRateLimit).where(PublicRateLimit.day_started_at < moment - timedelta(days=2)))
    return row


def submit_public(session: Session, secret: bytes, submission: PublicSubmission,
                  limits: PublicLimits = PublicLimits()) -> IntakeResult:
    """Check a public submission and store it. A filled honeypot is dropped quietly (the caller answers
    as if it were accepted); every other refusal raises `FeedbackRefused` naming the fields, every field's
    problem with a refused token's (a pilgrim told only "too quickly" would send it again, and be refused
    for the fields then)."""
    if submission.website not in (None, ""):
        return IntakeResult(False, dropped="honeypot")
    problems = _check_choices(submission.service, submission.rating)
    try:
        text = clean_text(submission.text, "text", max_length=limits.max_text, min_length=limits.min_text,
                          refuse_links=True)
    except FeedbackRefused as exc:
        problems.extend(exc.details)
        text = ""
    entity_code = (submission.entity or "").strip() or None
    if entity_code is not None:
        found = session.scalar(select(Entity).where(Entity.code == entity_code, Entity.active.is_(True))) if (
            _ENTITY_CODE.match(entity_code)) else None
        if found is None:
            problems.append({"field": "entity", "message": "unknown entity"})
    try:
        nonce = read_form_token(secret, submission.token, limits)
    except FeedbackRefused as exc:
        problems.extend(exc.details)
    if problems:
        raise FeedbackRefused("; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems)
    if session.scalar(select(FeedbackItem.id).where(FeedbackItem.form_nonce == nonce)) is not None:
        raise FeedbackRefused("this form was sent already; reload it to send more",
                              details=[{"field": "token", "message": "used already"}])
    item = record(session, NewFeedback(service=submission.service, rating=submission.rating, text=text,
                                       entity=entity_code), "public", channel=PUBLIC)
    item.form_nonce = nonce
    session.flush()
    return IntakeResult(True, item.id)


def public_intake(db: Database, secret: bytes, client_address: str, submission: PublicSubmission,
                  limits: PublicLimits = PublicLimits()) -> IntakeResult:
    """The public form's whole intake: count the attempt against the address's limits (in its own
    transaction, so refused attempts count too), then check and store the submission."""
    key = client_key(secret, client_address)
    with db.transaction() as session:
        wait = hit_rate_limit(session, key, limits)
    if wait is not None:
        raise RateLimited(f"too many submissions from this address; try again in {wait} seconds", wait)
    with db.transaction() as session:
        return submit_public(session, secret, submission, limits)


def public_form(session: Session, secret: bytes) -> dict[str, Any]:
    """What the public form needs: a fresh token, the services and the active entities (names only)."""
    rows = session.execute(select(Entity.code, Entity.name_ar, Entity.name_en).where(Entity.active.is_(True))
                           .order_by(Entity.code)).all()
    return {
        "token": issue_form_token(secret),
        "services": [{"code": s, "name_ar": SERVICE_NAMES[s][0], "name_en": SERVICE_NAMES[s][1]} for s in SERVICES],
        "entities": [{"code": c, "name_ar": ar, "name_en": en} for c, ar, en in rows],
    }


# --- the unit's list --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedbackFilters:
    season: int | None = None  # Hijri year
    service: str | None = None
    entity: str | None = None  # code; "none" for feedback without an entity
    status: str | None = None
    channel: str | None = None
    rating_min: int | None = None
    rating_max: int | None = None
    tag: str | None = None
    text: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    raised: bool | None = None  # linked to a directive or not


SORTS = ("received", "rating")


def search(session: Session, user: Actor, filters: FeedbackFilters | None = None, *, sort: str = "-received",
           limit: int = 50, offset: int = 0) -> tuple[list[FeedbackItem], int]:
    """One page of the feedback the user may see, filtered and sorted, and how many match in all."""
    filters = filters or FeedbackFilters()
    if sort.removeprefix("-") not in SORTS:
        raise InvalidInput(N_("unknown sort %(value)s (known: %(known)s, each optionally after -)"),
                           params={"value": repr(sort), "known": ", ".join(SORTS)})
    if limit < 1 or offset < 0:
        raise InvalidInput(N_("a page has a limit of at least 1 and an offset of at least 0"))
    query = visible_feedback(select(FeedbackItem), user)
    for condition in _conditions(filters):
        query = query.where(condition)
    column = FeedbackItem.received_at if sort.removeprefix("-") == "received" else FeedbackItem.rating
    ordering = [column.desc(), FeedbackItem.id.desc()] if sort.startswith("-") else [column.asc(),
                                                                                     FeedbackItem.id.asc()]
    total = session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = list(session.scalars(query.order_by(*ordering).limit(limit).offset(offset)))
    return rows, total


_UNKNOWN_FILTER = {"service": N_("unknown service %(value)s (known: %(known)s)"),
                   "status": N_("unknown status %(value)s (known: %(known)s)"),
                   "channel": N_("unknown channel %(value)s (known: %(known)s)")}


def _conditions(filters: FeedbackFilters) -> list[Any]:
    for value in (filters.service, filters.entity, filters.status, filters.channel, filters.tag, filters.text):
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse, not fail
            raise InvalidInput(N_("the filters may not contain NUL characters"))
    for label, value, allowed in (("service", filters.service, SERVICES), ("status", filters.status, STATUSES),
                                  ("channel", filters.channel, CHANNELS)):
        if value is not None and value not in allowed:
            raise InvalidInput(_UNKNOWN_FILTER[label], params={"value": repr(value), "known": ", ".join(allowed)})
    conditions: list[Any] = []
    if filters.season is not None:
        conditions.append(FeedbackItem.season_id == select(seasons.Season.id)
                          .where(seasons.Season.hijri_year == filters.season).scalar_subquery())
    if filters.service is not None:
        conditions.append(FeedbackItem.service == filters.service)
    if filters.entity == "none":
        conditions.append(FeedbackItem.entity_id.is_(None))
    elif filters.entity is not None:
        conditions.append(FeedbackItem.entity_id == select(Entity.id).where(Entity.code == filters.entity)
                          .scalar_subquery())
    if filters.status is not None:
        conditions.append(FeedbackItem.status == filters.status)
    if filters.channel is not None:
        conditions.append(FeedbackItem.channel == filters.channel)
    if filters.rating_min is not None:
        conditions.append(FeedbackItem.rating >= filters.rating_min)
    if filters.rating_max is not None:
        conditions.append(FeedbackItem.rating <= filters.rating_max)
    if filters.tag is not None:
        [tag] = clean_tags([filters.tag])
        conditions.append(FeedbackItem.id.in_(select(FeedbackTag.feedback_id).where(FeedbackTag.tag == tag)))
    text = (filters.text or "").strip()
    if text:
        conditions.append(text_search.contains(FeedbackItem.id, [FeedbackItem.text_ar_folded,
                                                                 FeedbackItem.text_en_folded], text))
    if filters.received_from is not None:
        conditions.append(FeedbackItem.received_at >= clock.as_utc(filters.received_from))
    if filters.received_to is not None:
        conditions.append(FeedbackItem.received_at < clock.as_utc(filters.received_to))
    linked = select(feedback_directive.c.feedback_id)
    if filters.raised is True:
        conditions.append(FeedbackItem.id.in_(linked))
    elif filters.raised is False:
        conditions.append(FeedbackItem.id.not_in(linked))
    return conditions


def linked_directives(session: Session, feedback_ids: Iterable[int]) -> dict[int, list[directives.Directive]]:
    """The directives raised from each feedback item (one query)."""
    ids = list(feedback_ids)
    out: dict[int, list[directives.Directive]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = session.execute(
        select(feedback_directive.c.feedback_id, directives.Directive)
        .join(directives.Directive, directives.Directive.id == feedback_directive.c.directive_id)
        .where(feedback_directive.c.feedback_id.in_(ids)).order_by(directives.Directive.id)
    ).all()
    for feedback_id, directive in rows:
        out[feedback_id].append(directive)
    return out


def feedback_of_directive(session: Session, directive_id: int) -> list[FeedbackItem]:
    return list(session.scalars(
        select(FeedbackItem).join(feedback_directive, feedback_directive.c.feedback_id == FeedbackItem.id)
        .where(feedback_directive.c.directive_id == directive_id).order_by(FeedbackItem.id)))


_UNSET: Any = object()


def update(session: Session, user: Actor, feedback_id: int, *, status: str = _UNSET, tags: list[str] = _UNSET,
           note: str | None = _UNSET, entity: str | None = _UNSET) -> FeedbackItem:
    """Triage: change the status (new, reviewed, dismissed; `raised` comes from raising a directive), the
    tags, a note, or name the entity when it was not known. Every change is recorded."""
    item = visible_item(session, user, feedback_id)  # unseen: NotFound; seen but not theirs to triage: Forbidden
    _require(can_triage(user), user, "triage feedback")
    changes: dict[str, Any] = {}
    if status is not _UNSET:
        if status not in (NEW, REVIEWED, DISMISSED):
            raise InvalidInput("a status set by hand is new, reviewed or dismissed")
        if item.status != status:
            changes["status"] = {"from": item.status, "to": status}
            item.status = status
    if tags is not _UNSET:
        cleaned = clean_tags(tags or [])
        before = [t.tag for t in item.tags]
        if sorted(before) != sorted(cleaned):
            changes["tags"] = {"from": before, "to": cleaned}
            item.tags = [FeedbackTag(tag=t) for t in cleaned]
    if note is not _UNSET:
        cleaned_note = clean_text(note, "note", max_length=2000) if note not in (None, "") else None
        if cleaned_note != item.note:
            changes["note"] = {"to": cleaned_note}
            item.note = cleaned_note
    if entity is not _UNSET:
        found = entities.require_active(session, [entity])[0] if entity else None
        new_id = found.id if found else None
        if new_id != item.entity_id:
            changes["entity"] = {"from": item.entity.code if item.entity else None, "to": entity or None}
            item.entity_id = new_id
    if changes:
        item.updated_by, item.updated_at = user.username, clock.now()
        session.flush()
        session.refresh(item)
        audit.record(session, user.username, "feedback.updated", subject(item.id), changes)
    return item


# --- raising a directive ----------------------------------------------------------------------------------

def _items(session: Session, feedback_ids: list[int], user: Actor | None) -> list[FeedbackItem]:
    if not feedback_ids or len(feedback_ids) > 200 or len(set(feedback_ids)) != len(feedback_ids):
        raise InvalidInput(N_("name 1-200 distinct feedback items"))
    query = select(FeedbackItem).where(FeedbackItem.id.in_(feedback_ids))
    if user is not None:
        query = visible_feedback(query, user)
    found = {item.id: item for item in session.scalars(query)}
    missing = [i for i in feedback_ids if i not in found]
    if missing:
        raise NotFound(N_("no feedback %(feedback)s"), params={"feedback": ", ".join(map(str, missing))})
    return [found[i] for i in feedback_ids]


def visible_items(session: Session, feedback_ids: list[int], user: Actor) -> list[FeedbackItem]:
    """The items in the order given, if the user may see every one of them (else `NotFound`)."""
    return _items(session, feedback_ids, user)


def suggest_directive(session: Session, feedback_ids: list[int], user: Actor | None = None
                      ) -> directives.NewDirective:
    """A draft directive for the items, to start the form with: the entity they share (if any), their
    tags, and their words in the body. The deadline is a placeholder of three days."""
    items = _items(session, feedback_ids, user)
    entity_codes = {item.entity.code for item in items if item.entity is not None}
    services = sorted({item.service for item in items})
    tags: list[str] = []
    for item in items:
        tags.extend(t.tag for t in item.tags if t.tag not in tags)
    names = "، ".join(SERVICE_NAMES[s][0] for s in services)
    names_en = ", ".join(SERVICE_NAMES[s][1] for s in services)
    lines = [f"• ({item.rating}/5) {item.text}" for item in items[:50]]
    return directives.NewDirective(
        title=f"معالجة ملاحظات الحجاج على خدمات {names}",
        title_en=f"Address pilgrims' feedback on {names_en}",
        kind="directive",
        responsible_entity=entity_codes.pop() if len(entity_codes) == 1 else "",
        deadline="P3D",
        body="ملاحظات الحجاج:\n" + "\n".join(lines),
        source=f"رأي الحاج ({len(items)})",
        tags=tags[:20],
    )


def raise_directive(session: Session, feedback_ids: list[int], actor: Actor,
                    new: directives.NewDirective | None = None) -> directives.Directive:
    """Create a draft directive from feedback items: linked to each of them, with their tags carried over
    (added to those of `new`, which defaults to `suggest_directive`), the items marked `raised`."""
    items = _items(session, feedback_ids, actor)
    _require(can_raise(actor), actor, "raise a directive")
    suggested = suggest_directive(session, feedback_ids, actor)
    new = new or suggested
    carried = [t for item in items for t in (tag.tag for tag in item.tags)]
    tags = clean_tags([*carried, *(new.tags or [])])
    directive = directives.create(session, replace(new, tags=tags), actor.username, launch_now=False)
    session.execute(feedback_directive.insert(), [{"feedback_id": item.id, "directive_id": directive.id}
                                                  for item in items])
    for item in items:
        previous = item.status
        item.status, item.updated_by, item.updated_at = RAISED, actor.username, clock.now()
        audit.record(session, actor.username, "feedback.raised", subject(item.id),
                     {"directive": directive.id, "reference": directive.reference, "status_was": previous})
    audit.record(session, actor.username, "directive.raised_from_feedback", directives.subject(directive.id),
                 {"feedback": [item.id for item in items], "tags": tags})
    session.flush()
    return directive


# --- figures ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    """Counts for a page or dashboard: in all, by service, by rating, and by entity (None: not known)."""

    responses: int
    mean_rating: float | None
    low_ratings: int
    by_service: dict[str, tuple[int, float | None]]
    by_rating: dict[int, int]
    by_entity: dict[str | None, tuple[int, float | None]]


def figures(session: Session, user: Actor, filters: FeedbackFilters | None = None) -> Figures:
    """Figures of the feedback the user may see, with the list's filters: one grouped query."""
    query = visible_feedback(
        select(FeedbackItem.service, FeedbackItem.rating, Entity.code, func.count())
        .select_from(FeedbackItem).outerjoin(Entity, Entity.id == FeedbackItem.entity_id), user)
    for condition in _conditions(filters or FeedbackFilters()):
        query = query.where(condition)
    rows = session.execute(query.group_by(FeedbackItem.service, FeedbackItem.rating, Entity.code)).all()
    total = sum(r[3] for r in rows)

    def grouped(position: int) -> dict[Any, tuple[int, float | None]]:
        sums: dict[Any, list[int]] = {}
        for row in rows:
            bucket = sums.setdefault(row[position], [0, 0])
            bucket[0] += row[3]
            bucket[1] += row[1] * row[3]
        return {key: (n, round(s / n, 2) if n else None) for key, (n, s) in sorted(
            sums.items(), key=lambda kv: (-kv[1][0], str(kv[0])))}

    by_rating = {rating: 0 for rating in range(1, 6)}
    for row in rows:
        by_rating[row[1]] += row[3]
    weighted = sum(r[1] * r[3] for r in rows)
    return Figures(total, round(weighted / total, 2) if total else None, by_rating[1] + by_rating[2],
                   grouped(0), by_rating, grouped(2))


# --- the demo season --------------------------------------------------------------------------------------

_DEMO_TAGS = (  # words of the demo's sample feedback (demo_data/season.json) -> tags shared with its directives
    ("bus", "bus_delay"), ("lift", "maintenance"), ("air conditioning", "maintenance"), ("departure", "dispatch"),
    ("dispatch", "dispatch"), ("interpreter", "interpreters"), ("wait", "waiting_time"), ("far from", "housing"),
    ("signs", "signage"), ("reception", "reception"),
)


def seed_demo(session: Session, samples: list[dict[str, Any]], start: datetime, end: datetime,
              rng: Any, *, copies: int = 6) -> list[FeedbackItem]:
    """Demo feedback for `engine.system.demo`: each sample of season.json `copies` times at random moments between
    `start` and `end`, with the entity of its service when one exists and tags from its words."""
    known = set(session.scalars(select(Entity.code).where(Entity.active.is_(True))))
    span = max(1, int((end - start).total_seconds()))
    made = []
    for sample in samples:
        words = (sample.get("text_en") or "").lower()
        tags = sorted({tag for word, tag in _DEMO_TAGS if word in words})
        for _ in range(copies):
            new = NewFeedback(service=sample["service"], rating=int(sample["rating"]), text_ar=sample.get("text_ar"),
                              text_en=sample.get("text_en"), language="ar",
                              entity=sample["service"] if sample["service"] in known and rng.random() < 0.7 else None,
                              tags=tags, received_at=start + timedelta(seconds=rng.randrange(span)))
            made.append(record(session, new, "demo", channel=PUBLIC if rng.random() < 0.6 else API))
    return made

