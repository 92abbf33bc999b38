"""An entity's register: the directives it leads or supports, read newest first along its addressee rows.

`directives.search` takes that path when the search is limited to one entity (an entity user's own
register, or anyone's with the `entity` filter) and sorted by creation; these tests hold its rows, order
and totals against the directives themselves, and check the addressee rows follow creation, import and
reassignment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from engine.directives import directives
from engine.directives.directives import Directive, DirectiveAddressee, DirectiveFilters, NewDirective
from engine.foundation import clock
from engine.people import entities
from engine.system import migrate
from tests.helpers import deploy, season_1447

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)  # 1447-12-03, in the season
ENTITIES = (("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport"),
            ("reception", "الاستقبال", "Reception"))
# responsible, supporting: a spread where each entity leads some, supports some and sees not all
PLAN = [("housing", []), ("transport", ["housing"]), ("reception", []), ("housing", ["transport", "reception"]),
        ("transport", []), ("reception", ["housing"]), ("housing", []), ("transport", ["reception"])]
ADMIN = SimpleNamespace(username="admin", role="admin", entity_id=None, active=True)


@pytest.fixture
def world(db):
    clock.set_now(NOW)
    deploy(db, "deadline.bpmn")
    season_1447(db, *ENTITIES)
    for index, (responsible, supporting) in enumerate(PLAN):
        # two directives share each moment: ties are broken by id
        clock.set_now(NOW + timedelta(minutes=index // 2))
        with db.transaction() as session:
            directives.create(session, NewDirective(
                title=f"توجيه رقم {index}", kind="decision", responsible_entity=responsible, deadline="P5D",
                supporting_entities=supporting, process_model_key="deadline"), "secretariat")
    return db


def _entity_user(db, code: str, active: bool = True) -> SimpleNamespace:
    with db.reading() as session:
        entity_id = entities.get_by_code(session, code).id
    return SimpleNamespace(username=f"{code}.user", role="entity_user", entity_id=entity_id, active=active)


def _expected(db, code: str, newest_first: bool = True, status: str | None = None) -> list[int]:
    with db.reading() as session:
        rows = [d for d in session.scalars(select(Directive))
                if code in [d.responsible_entity.code, *(e.code for e in d.supporting_entities)]
                and (status is None or d.status == status)]
    rows.sort(key=lambda d: (d.created_at, d.id), reverse=newest_first)
    return [d.id for d in rows]


def _search(db, user, filters: DirectiveFilters | None = None, sort: str = "-created", limit: int = 50,
            offset: int = 0) -> tuple[list[int], int]:
    with db.reading() as session:
        rows, total = directives.search(session, user, filters, sort, limit, offset)
        return [d.id for d in rows], total


@pytest.mark.parametrize("code", [code for code, *_ in ENTITIES])
def test_an_entity_users_register_is_what_its_entity_leads_or_supports_newest_first(world, code):
    user = _entity_user(world, code)
    expected = _expected(world, code)
    assert _search(world, user) == (expected, len(expected))
    assert _search(world, user, sort="created") == (expected[::-1], len(expected))
    assert _search(world, user, limit=2, offset=1) == (expected[1:3], len(expected))
    assert _search(world, ADMIN, DirectiveFilters(entity=code)) == (expected, len(expected))


def test_filters_and_other_sorts_give_the_same_rows_as_the_general_search(world):
    housing = _entity_user(world, "housing")
    with world.transaction() as session:
        directives.cancel(session, _expected(world, "housing")[0], "secretariat", "withdrawn by the committee")
    drafts = _expected(world, "housing", status="draft")
    assert _search(world, housing, DirectiveFilters(status="draft")) == (drafts, len(drafts))
    by_reference, total = _search(world, housing, sort="reference")
    assert sorted(by_reference) == sorted(_expected(world, "housing")) and total == len(by_reference)
    # an entity user filtering on another entity sees what both are addressed to
    both = [i for i in _expected(world, "transport") if i in _expected(world, "housing")]
    assert _search(world, housing, DirectiveFilters(entity="transport")) == (both, len(both))


def test_a_user_who_may_not_read_directives_sees_none_through_the_register(world):
    inactive = _entity_user(world, "housing", active=False)
    assert _search(world, inactive) == ([], 0)
    assert _search(world, inactive, DirectiveFilters(entity="housing")) == ([], 0)
    no_entity = SimpleNamespace(username="someone", role="entity_user", entity_id=None, active=True)
    assert _search(world, no_entity) == ([], 0)


def test_each_directive_is_addressed_to_its_responsible_and_supporting_entities(world):
    with world.reading() as session:
        stored = {(a.entity_id, a.directive_id, a.created_at) for a in session.scalars(select(DirectiveAddressee))}
        wanted = {(e.id, d.id, d.created_at) for d in session.scalars(select(Directive))
                  for e in [d.responsible_entity, *d.supporting_entities]}
    assert stored == wanted


def test_address_follows_a_change_of_responsible_entity(world):
    first = _expected(world, "transport")[-1]  # transport leads it, housing supports it
    with world.transaction() as session:
        directive = session.get(Directive, first)
        directive.responsible_entity_id = entities.get_by_code(session, "reception").id
        session.flush()
        directives.address(session, [first])
    assert first not in _expected(world, "transport")
    assert first not in _search(world, _entity_user(world, "transport"))[0]
    assert first in _search(world, _entity_user(world, "reception"))[0]
    assert first in _search(world, _entity_user(world, "housing"))[0]


def test_the_migration_addresses_the_directives_registered_before_it(world):
    url = world.engine.url.render_as_string(hide_password=False)
    world.dispose()
    migrate.downgrade(url, "0003")  # drops the addressee rows with their table
    migrate.upgrade(url)
    test_each_directive_is_addressed_to_its_responsible_and_supporting_entities(world)
    housing = _expected(world, "housing")
    assert _search(world, _entity_user(world, "housing")) == (housing, len(housing))
