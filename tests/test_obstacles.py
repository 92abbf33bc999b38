"""Recurring obstacles across two seasons, from directive tags and pilgrim-feedback tags: counts, entities,
the previous season found or named, and the seasonal report's section computed the same way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import feedback
from engine.calendar.seasons import get_season
from engine.directives import directives, tags
from engine.directives.directives import NewDirective
from engine.feedback import NewFeedback
from engine.foundation.errors import InvalidInput, NotFound
from engine.insight import obstacles
from engine.reports import seasonal
from tests.test_meetings import build_world

LAST_SEASON = datetime(2025, 6, 1, 9, tzinfo=UTC)  # in Hajj 1446


@pytest.fixture
def world(db):
    build_world(db, previous_season=True)
    with db.transaction() as session:
        def directive(year: int, entity: str, *tags: str) -> None:
            directives.create(session, NewDirective(title=f"توجيه {tags}", kind="directive",
                                                    responsible_entity=entity, deadline="PT6H", tags=list(tags),
                                                    season_year=year, process_model_key="deadline"), "secretariat")

        def said(when: datetime | None, entity: str | None, *tags: str) -> None:
            feedback.record(session, NewFeedback(service="transport", rating=2, text="تأخرت الحافلة",
                                                 entity=entity, tags=list(tags), received_at=when), "officer")

        directive(1446, "transport", "bus_delay", "safety")
        directive(1446, "housing", "safety")
        said(LAST_SEASON, None, "lifts")
        said(LAST_SEASON, "civil_defence", "bus_delay")
        directive(1447, "transport", "bus_delay")
        directive(1447, "housing", "safety", "new_this_season")
        said(None, "transport", "bus_delay")
        said(None, "housing", "lifts", "Bus Delay")
        said(None, None, "lifts")
    return db


def _shape(found: list[obstacles.Obstacle]) -> list[tuple]:
    return [(o.tag, o.count, o.previous_count, o.directives, o.feedback, o.previous_directives, o.previous_feedback,
             [e.code for e in o.entities], [e.code for e in o.previous_entities]) for o in found]


def test_tags_of_directives_and_feedback_that_recur_from_the_previous_season(world):
    with world.reading() as session:
        found = obstacles.recurring(session, get_season(session, 1447))
    assert _shape(found) == [
        ("bus_delay", 3, 2, 1, 2, 1, 1, ["housing", "transport"], ["civil_defence", "transport"]),
        ("lifts", 2, 1, 0, 2, 0, 1, ["housing"], []),
        ("safety", 1, 2, 1, 0, 2, 0, ["housing"], ["housing", "transport"]),
    ]


def test_the_view_by_hijri_years_and_its_errors(world):
    with world.reading() as session:
        view = obstacles.recurring_for_year(session, 1447)
        assert (view.season_year, view.previous_year, len(view.obstacles)) == (1447, 1446, 3)
        assert obstacles.recurring_for_year(session).season_year == 1447  # today's season
        first = obstacles.recurring_for_year(session, 1446)
        assert (first.previous_year, first.obstacles) == (None, [])  # nothing before the first season
        with pytest.raises(InvalidInput, match="comes before"):
            obstacles.recurring_for_year(session, 1446, 1447)
        with pytest.raises(NotFound):
            obstacles.recurring_for_year(session, 1447, 1440)
        with pytest.raises(InvalidInput):
            obstacles.recurring(session, get_season(session, 1447), get_season(session, 1447))


def test_the_seasonal_report_uses_the_same_computation(world):
    with world.reading() as session:
        report = seasonal(session, get_season(session, 1447))
        direct = obstacles.recurring(session, get_season(session, 1447))
    assert report.obstacles == direct and [o.tag for o in report.obstacles] == ["bus_delay", "lifts", "safety"]


def test_tags_are_cleaned_the_same_way_as_directives_clean_them():
    assert tags.clean_tags(["Bus Delay", "bus_delay", " التكييف "]) == ["bus_delay", "التكييف"]
    assert tags.split_tags("النقل، bus_delay; lifts\nsafety") == ["النقل", "bus_delay", "lifts", "safety"]
    assert tags.split_tags(None) == []
    for bad in (["a/b"], ["x" * 61], [str(n) + "x" for n in range(21)]):
        with pytest.raises(InvalidInput):
            tags.clean_tags(bad)
    with pytest.raises(InvalidInput):
        tags.clean_tags("not a list")


def test_the_demo_can_seed_a_previous_season_to_compare_with(db):
    import random
    from datetime import date, timedelta

    from engine.foundation import clock
    from engine.people import entities
    from engine.system.demo import season_data

    data = season_data()
    build_world(db, models=("directive-standard.bpmn", "directive-multi-entity.bpmn", "directive-urgent.bpmn",
                            "circular-acknowledgement.bpmn"))
    rng = random.Random(7)
    with db.transaction() as session:
        known = {e.code for e in entities.list_entities(session)}
        for entity in data["entities"]:
            if entity["code"] not in known:
                entities.create_entity(session, entity["code"], entity["name_ar"], entity["name_en"], entity["kind"])
        previous = obstacles.seed_demo_previous_season(session, data, 1446, date(2025, 4, 28), date(2025, 7, 26), rng)
        feedback.seed_demo(session, data["feedback"], clock.now() - timedelta(days=10), clock.now(), rng, copies=2)
    assert previous.hijri_year == 1446
    with db.reading() as session:
        found = obstacles.recurring(session, get_season(session, 1447))
        assert found  # the sample feedback's tags recur in both seasons
        assert all(o.previous_count > 0 and o.count > 0 for o in found)
        assert {"maintenance", "bus_delay"} & {o.tag for o in found}
