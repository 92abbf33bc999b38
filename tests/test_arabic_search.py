"""Search finds Arabic the way people type it: every free-text search, on both databases (issue 21).

Each pair below is one phrase typed two ways that differ only in what `engine.foundation.text_search.fold` folds. A row
is written with each form, through the engine's own write paths, and each form typed into each search (the
register, the feedback, the meetings, the users) must find both rows and nothing else. Then the twins must
follow updates (unit of work, `write_row`, Core updates), Core inserts (the bulk import's), and the migration
must fold the rows that were there before it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert, select, text, update

from engine import feedback
from engine.directives import directives, meetings
from engine.directives.directives import Directive, DirectiveFilters, NewDirective
from engine.directives.meetings import Meeting
from engine.feedback import FeedbackFilters, FeedbackItem, NewFeedback
from engine.foundation import clock
from engine.foundation.text_search import SEARCH_TABLES, CannotFold, fold
from engine.people import users
from engine.people.users import User
from engine.storage.db import Database, write_row
from engine.system import migrate
from tests.helpers import deploy, season_1447

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)
ADMIN = SimpleNamespace(username="admin", role="admin", entity_id=None, active=True)
PAIRS = {  # what is folded: (one way of typing, another)
    "alef with hamza above": ("أمانة العاصمة", "امانة العاصمة"),
    "alef with hamza below": ("إسعاف ميداني", "اسعاف ميداني"),
    "alef with madda": ("آليات النظافة", "اليات النظافة"),
    "alef wasla": ("ٱلمشاعر المقدسة", "المشاعر المقدسة"),
    "taa marbuta": ("خطة الإخلاء", "خطه الإخلاء"),
    "alef maqsura": ("مستشفى منى", "مستشفي مني"),
    "tashkeel": ("مُخَيَّمَاتُ عَرَفَات", "مخيمات عرفات"),
    "superscript alef": ("هٰذا البيان", "هذا البيان"),
    "tatweel": ("الحـــافلات الترددية", "الحافلات الترددية"),
    "hamza on waw": ("مسؤولية الجهة", "مسوولية الجهة"),
    "hamza on yaa": ("حالات الطوارئ", "حالات الطواري"),
    "Arabic-Indic digits": ("بوابة رقم ٧٣", "بوابة رقم 73"),
    "all at once": ("إِدارَةُ الـمُـرورِ فى مِنىٰ", "ادارة المرور في مني"),
    "Latin case": ("Airport Shuttle", "AIRPORT SHUTTLE"),
}


def test_fold_maps_every_way_of_typing_to_one_form():
    assert fold("أإآٱا") == "ااااا"
    assert fold("ة ى ؤ ئ ء") == "ه ي و ي ء"  # the standalone hamza stays
    assert fold("مُحَمَّدٌ ٰ") == "محمد "
    assert fold("الحـــج") == "الحج"
    assert fold("١٤٤٧/٠٠٠١٢ ۱۲") == "1447/00012 12"
    assert fold("Mina CAMP") == "mina camp" and fold("Straße") == "strasse"
    assert fold("\u200fمنى\u200e") == "مني"  # direction marks copied with a text
    assert fold("ﻻ") == "لا"  # presentation forms (NFKC)
    assert fold("café") == "café"  # Latin accents are kept
    assert fold(None) is None
    for one, other in PAIRS.values():
        assert fold(one) == fold(other), (one, other)


# --- the four searches ----------------------------------------------------------------------------------

Write = Callable[[object, int, str], int]
Search = Callable[[Database, str], list[int]]


def _write_directive(session, number: int, words: str) -> int:
    return directives.create(session, NewDirective(
        title=words, kind="decision", responsible_entity="transport", deadline="P5D",
        process_model_key="deadline"), "secretariat").id


def _write_feedback(session, number: int, words: str) -> int:
    return feedback.record(session, NewFeedback(service="transport", rating=3, text=words), "officer").id


def _write_meeting(session, number: int, words: str) -> int:
    return meetings.create(session, number=number, title_ar=words, held="2026-05-10", actor="secretariat").id


def _write_user(session, number: int, words: str) -> int:
    return users.create_user(session, f"user{number}", "a long password", "supervisor", full_name=words).id


def _search_register(db: Database, typed: str) -> list[int]:
    with db.reading() as session:
        return sorted(d.id for d in directives.search(session, ADMIN, DirectiveFilters(text=typed))[0])


def _search_feedback(db: Database, typed: str) -> list[int]:
    with db.reading() as session:
        return sorted(f.id for f in feedback.search(session, ADMIN, FeedbackFilters(text=typed))[0])


def _search_meetings(db: Database, typed: str) -> list[int]:
    with db.reading() as session:
        return sorted(m.id for m in meetings.list_meetings(session, ADMIN, text=typed)[0])


def _search_users(db: Database, typed: str) -> list[int]:
    with db.reading() as session:
        return sorted(u.id for u in users.list_users(session, text=typed, limit=200)[0])


SEARCHES: dict[str, tuple[Write, Search]] = {
    "register": (_write_directive, _search_register),
    "feedback": (_write_feedback, _search_feedback),
    "meetings": (_write_meeting, _search_meetings),
    "users": (_write_user, _search_users),
}


@pytest.fixture
def world(db, monkeypatch):
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock.set_now(NOW)
    deploy(db, "deadline.bpmn")
    season_1447(db, ("transport", "النقل", "Transport"))
    return db


def _write_pairs(db: Database, write: Write) -> dict[str, tuple[int, int]]:
    """A row for each way of typing each pair: {what is folded: (its first row, its second row)}."""
    written = {}
    with db.transaction() as session:
        for number, (folded, (one, other)) in enumerate(PAIRS.items(), start=1):
            written[folded] = (write(session, 2 * number, one), write(session, 2 * number + 1, other))
    return written


@pytest.mark.parametrize("kind", list(SEARCHES))
def test_each_way_of_typing_finds_the_other(world, kind: str):
    write, search = SEARCHES[kind]
    written = _write_pairs(world, write)
    for folded, (one, other) in PAIRS.items():
        both = sorted(written[folded])
        if folded != "Latin case":  # what the search found before folding (case was ignored already)
            assert other not in one and one not in other
        assert search(world, one) == both, (kind, folded, one)
        assert search(world, other) == both, (kind, folded, other)
        first_word = one.split()[0]
        assert search(world, first_word) == both, (kind, folded, first_word)
    assert search(world, "مستشفي منى") == sorted(written["alef maqsura"])  # half and half
    assert search(world, "ـــ") == search(world, "")  # a text that folds to nothing asks for nothing
    _check_twins(world)


def test_a_reference_typed_in_arabic_indic_digits_is_found(world):
    written = _write_pairs(world, _write_directive)
    with world.reading() as session:
        first = session.get(Directive, written["tashkeel"][0]).reference  # 1447/000013
    typed = first.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert typed != first and _search_register(world, typed) == [written["tashkeel"][0]]


# --- every write path keeps the twins -------------------------------------------------------------------

def test_the_twins_follow_every_kind_of_update(world):
    ids = {kind: SEARCHES[kind][0] for kind in SEARCHES}
    with world.transaction() as session:
        directive = ids["register"](session, 1, "نقل الحجاج")
        other = ids["register"](session, 2, "تنظيف الشوارع")
        meeting = ids["meetings"](session, 1, "اجتماع التنسيق الأول")
        ids["users"](session, 1, "خالد")
    with world.transaction() as session:  # the unit of work
        session.get(Directive, directive).title = "تجهيز مُخيّمات منى"
        meetings.update_meeting(session, meeting, "secretariat", title_ar="اجتماع الطوارئ", title_en="Emergency")
        users.update_user(session, "user1", "admin", full_name="عبدالله المسؤول", email="Abdullah@Example.org")
    with world.transaction() as session:  # one Core UPDATE, as write_row sends it
        write_row(session, session.get(Directive, other), {"title_en": "Street Cleaning"})
    assert _search_register(world, "نقل") == [] and _search_register(world, "مخيمات مني") == [directive]
    assert _search_register(world, "STREET CLEAN") == [other]
    assert _search_meetings(world, "الطواري") == [meeting] and _search_meetings(world, "التنسيق") == []
    assert _search_meetings(world, "emergency") == [meeting]
    assert _search_users(world, "المسوول") and _search_users(world, "خالد") == []
    assert _search_users(world, "abdullah@example") == _search_users(world, "user1")
    with world.transaction() as session:  # a Core UPDATE of several rows, its value in the statement
        session.execute(update(Directive).values(title_en="Grouping Plan"))
    assert _search_register(world, "grouping plan") == sorted([directive, other])
    _check_twins(world)


def test_core_inserts_get_their_twins(world):
    """As the bulk import inserts directives: one INSERT, many rows, past the unit of work."""
    with world.transaction() as session:
        template = session.get(Directive, _write_directive(session, 1, "قالب"))
        row = {c.key: getattr(template, c.key) for c in Directive.__table__.columns
               if c.key != "id" and not c.key.endswith("_folded")}
        rows = [dict(row, reference=f"1447/9{n:05d}", title=f"إعادة توزيع المياه {n}") for n in range(3)]
        inserted = list(session.scalars(insert(Directive).returning(Directive.id, sort_by_parameter_order=True),
                                        rows))
    assert _search_register(world, "اعاده توزيع") == sorted(inserted)
    _check_twins(world)


def test_a_write_the_engine_cannot_fold_is_refused(world):
    with world.transaction() as session:
        _write_directive(session, 1, "نقل")
    with pytest.raises(CannotFold), world.transaction() as session:
        session.execute(update(Directive).values(title=Directive.title + " الحجاج"))
    with pytest.raises(CannotFold), world.transaction() as session:
        session.execute(insert(Meeting).from_select(
            ["season_id", "number", "title_ar", "held_at", "created_by", "created_at"],
            select(Meeting.season_id, Meeting.number + 100, Meeting.title_ar, Meeting.held_at, Meeting.created_by,
                   Meeting.created_at)))
    _check_twins(world)


# --- the migration ---------------------------------------------------------------------------------------

def test_the_migration_folds_the_rows_written_before_it(world):
    written = {kind: _write_pairs(world, SEARCHES[kind][0]) for kind in SEARCHES}
    url = world.engine.url.render_as_string(hide_password=False)
    world.dispose()
    migrate.downgrade(url, "0010")  # the twins go with their columns
    with world.engine.connect() as connection:
        columns = {c for t in SEARCH_TABLES for c in _columns(connection, t)}
    assert not any(c.endswith("_folded") for c in columns)
    migrate.upgrade(url)
    world.dispose()
    for kind, (_, search) in SEARCHES.items():
        for folded, (one, other) in PAIRS.items():
            assert search(world, other) == sorted(written[kind][folded]), (kind, folded)
            assert search(world, one) == sorted(written[kind][folded]), (kind, folded)
    _check_twins(world)


def _columns(connection, table: str) -> list[str]:
    if connection.dialect.name == "sqlite":
        return [r[1] for r in connection.exec_driver_sql(f"PRAGMA table_info({table})")]
    return list(connection.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
                                   {"t": table}).scalars())


def _check_twins(db: Database) -> None:
    """Every twin holds its column folded; on SQLite each FTS5 table holds exactly its table's rows."""
    with db.reading() as session:
        for model, columns in ((Directive, ("reference", "title", "title_en")), (FeedbackItem, ("text_ar", "text_en")),
                               (Meeting, ("title_ar", "title_en")), (User, ("username", "full_name", "email"))):
            for name in columns:
                source, twin = getattr(model, name), getattr(model, f"{name}_folded")
                for value, folded in session.execute(select(source, twin)):
                    assert folded == fold(value), (model.__name__, name, value, folded)
    if db.is_sqlite:
        with db.engine.begin() as connection:
            for fts, _ in SEARCH_TABLES.values():
                connection.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))
