"""The text searches of the register, the feedback, the meetings and the users: any part of a text, folded
(case, Arabic letter forms, tashkeel, tatweel, digits), from an index.

On PostgreSQL the LIKEs over the folded twins are answered by trigram indexes; on SQLite the same condition
becomes a match in an FTS5 trigram table over the twins kept by triggers (engine/foundation/text_search.py, migrations
0007 and 0011). Both must find exactly what `fold(typed) in fold(value)` finds: these tests compare each
search with that, computed in Python from the rows, and check that each way of typing finds the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text, update

from engine import feedback
from engine.directives import directives
from engine.directives.directives import Directive, DirectiveFilters, NewDirective
from engine.feedback import FeedbackFilters, FeedbackItem, NewFeedback
from engine.foundation import clock
from engine.foundation.text_search import fold
from engine.system import migrate
from tests.helpers import deploy, season_1447

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)  # 1447-12-03, in the season
ADMIN = SimpleNamespace(username="admin", role="admin", entity_id=None, active=True)
TITLES = [  # (Arabic, English): from the demo season's directives, and a few with the characters LIKE and FTS5 treat
    ("زيادة عدد الحافلات على خط المطار", "More buses on the airport line"),
    ("تجهيز مخيمات الاستقبال قبل وصول الحجاج", "Prepare the reception camps before the pilgrims arrive"),
    ("رفع الطاقة الاستيعابية للسكن بنسبة 50%", "Raise housing capacity by 50%"),
    ('مراجعة خطة "التفويج" مع النقل', 'Review the "grouping" plan with transport'),
    ("صيانة المصاعد في سكن_الحجاج", None),
]
FEEDBACK = [
    "تأخرت الحافلة من المطار أكثر من ثلاث ساعات",
    "The lifts are out of order in building 7",
    "استقبال ممتاز في مطار المدينة",
    "Bus AC not working; 100% full",
]
SEARCHES = ["الحافلات", "حافل", "AIRPORT", "Airport Line", "50%", "%", "_", "سكن_", '"التفويج"', '"', "خط",
            "ab", "1447/", "/000", "the pilgrims arr", "لا يوجد هذا النص", "  المطار  ",
            # FTS5's query syntax must stay text: quotes, operators, column filters, prefixes
            'ing" pl', '"grouping" plan', "grouping OR camps", "NEAR(grouping plan)", "title_en: More", "Mo*",
            "^More", "a'b", "50% OR 1=1"]


@pytest.fixture
def world(db):
    clock.set_now(NOW)
    deploy(db, "deadline.bpmn")
    season_1447(db, ("transport", "النقل", "Transport"))
    with db.transaction() as session:
        for title, title_en in TITLES:
            directives.create(session, NewDirective(
                title=title, title_en=title_en, kind="decision", responsible_entity="transport", deadline="P5D",
                process_model_key="deadline"), "secretariat")
        for words in FEEDBACK:
            feedback.record(session, NewFeedback(service="transport", rating=2, text=words), "officer")
    return db


def _ilike(values: list[str | None], wanted: str) -> bool:
    """What `LIKE '%wanted%'` on one of the folded values answers (the wanted text stripped, as the search does)."""
    return any(value is not None and fold(wanted.strip()) in fold(value) for value in values)


def _register(db, wanted: str) -> tuple[list[int], int]:
    with db.reading() as session:
        rows, total = directives.search(session, ADMIN, DirectiveFilters(text=wanted), "created")
        return [d.id for d in rows], total


def _expected_register(db, wanted: str) -> list[int]:
    with db.reading() as session:
        return [d.id for d in session.scalars(select(Directive).order_by(Directive.created_at, Directive.id))
                if _ilike([d.reference, d.title, d.title_en], wanted)]


def _feedback(db, wanted: str) -> tuple[list[int], int]:
    with db.reading() as session:
        rows, total = feedback.search(session, ADMIN, FeedbackFilters(text=wanted), sort="received")
        return [f.id for f in rows], total


def _expected_feedback(db, wanted: str) -> list[int]:
    with db.reading() as session:
        return [f.id for f in session.scalars(select(FeedbackItem).order_by(FeedbackItem.received_at,
                                                                            FeedbackItem.id))
                if _ilike([f.text_ar, f.text_en], wanted)]


def test_the_register_finds_any_part_of_a_reference_or_title_ignoring_case(world):
    for wanted in SEARCHES:  # one after the other: each statement is compiled once and reused with new text
        expected = _expected_register(world, wanted)
        assert _register(world, wanted) == (expected, len(expected)), wanted
    assert len(_expected_register(world, "AIRPORT")) == 1 and len(_expected_register(world, "1447/")) == len(TITLES)
    assert _register(world, "50%")[1] == 1 and _register(world, "_")[1] == 1 and _register(world, '"')[1] == 1


def test_the_feedback_search_finds_any_part_of_either_text_ignoring_case(world):
    for wanted in ["الحافلة", "مطار", "LIFTS ARE", "100%", "%", "ac", "building 7", "غير موجود", ";"]:
        expected = _expected_feedback(world, wanted)
        assert _feedback(world, wanted) == (expected, len(expected)), wanted
    assert _feedback(world, "مطار")[1] == 2


def test_an_entity_users_register_is_searched_the_same_way(world):
    with world.reading() as session:
        transport = session.scalar(select(Directive.responsible_entity_id).limit(1))
    user = SimpleNamespace(username="transport.user", role="entity_user", entity_id=transport, active=True)
    with world.reading() as session:
        rows, total = directives.search(session, user, DirectiveFilters(text="الاستقبال"))
    assert [d.title for d in rows] == [TITLES[1][0]] and total == 1


def test_the_index_follows_changed_and_deleted_rows(world):
    with world.transaction() as session:
        first = session.scalar(select(Directive).where(Directive.title == TITLES[0][0]))
        session.execute(update(Directive).where(Directive.id == first.id)
                        .values(title="نقل الحجاج إلى المشاعر", title_en="Moving pilgrims to the holy sites"))
        session.execute(update(FeedbackItem).where(FeedbackItem.text_en.like("The lifts%"))
                        .values(text_en="The escalators are out of order"))
    assert _register(world, "الحافلات")[1] == 0 and _register(world, "المشاعر")[0] == [first.id]
    assert _register(world, "HOLY SITES")[0] == [first.id]
    assert _feedback(world, "lifts")[1] == 0 and _feedback(world, "escalators")[1] == 1
    with world.transaction() as session:
        session.execute(update(Directive).where(Directive.id == first.id).values(current_steps=["x"]))
    assert _register(world, "المشاعر")[0] == [first.id]
    _check_sqlite_index(world)


def _check_sqlite_index(db) -> None:
    """SQLite: FTS5's own check that each index holds exactly its table's rows (external content)."""
    if not db.is_sqlite:
        return
    with db.engine.begin() as connection:
        for fts in ("directive_search", "pilgrim_feedback_search"):
            connection.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))


def test_the_migration_indexes_what_was_there_before_it(world):
    url = world.engine.url.render_as_string(hide_password=False)
    world.dispose()
    migrate.downgrade(url, "0006")
    with world.engine.connect() as connection:
        tables = set(connection.exec_driver_sql(
            "SELECT name FROM sqlite_master" if world.is_sqlite else
            "SELECT indexname FROM pg_indexes WHERE tablename = 'pilgrim_feedback'").scalars())
    assert not {"directive_search", "pilgrim_feedback_search", "ix_pilgrim_feedback_text_en_trgm"} & tables
    migrate.upgrade(url)
    world.dispose()
    for wanted in ("المطار", "pilgrims", "1447/"):
        expected = _expected_register(world, wanted)
        assert expected and _register(world, wanted) == (expected, len(expected))
    assert _feedback(world, "lifts")[1] == 1
    _check_sqlite_index(world)


def test_deleted_rows_leave_the_index(world):
    """Rows are deleted when a test database is emptied and when a backup is restored over it."""
    with world.transaction() as session:
        session.execute(text("DELETE FROM feedback_tag"))
        session.execute(text("DELETE FROM pilgrim_feedback WHERE text_en IS NOT NULL"))
    assert _feedback(world, "lifts")[1] == 0 and _feedback(world, "مطار")[1] == 2
    _check_sqlite_index(world)
