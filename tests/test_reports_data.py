"""Report data on a world played through the engine (tests/test_reports_world.py), on SQLite and
PostgreSQL. Every expected figure is worked out by hand from that file's timeline."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event

from engine import feedback as pilgrim_feedback
from engine.calendar import seasons
from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.foundation import clock
from engine.foundation.errors import InvalidInput
from engine.people.entities import EntityRef
from engine.reports import daily, periodic, seasonal
from engine.reports.common import DurationStats, HijriDate, as_dict, percentile
from engine.reports.feedback import FeedbackEntityRow
from engine.work import timers
from tests.test_reports_world import DAY, END, at, build

HOUSING = EntityRef("housing", "الإسكان", "Housing")
TRANSPORT = EntityRef("transport", "النقل", "Transport")
CIVIL_DEFENCE = EntityRef("civil_defence", "الدفاع المدني", "Civil Defence")


@pytest.fixture
def world(db):
    return build(db)


def _season(db, year):
    with db.reading() as session:
        return seasons.get_season(session, year)


def test_daily_report_counts_the_day_and_its_state_at_the_moment_made(world):
    with world.db.reading() as session:
        report = daily(session, DAY)
    assert report.period.start == report.period.end == DAY
    assert report.period.starts_at == at(2026, 5, 19, 21) and report.period.ends_at == at(2026, 5, 20, 21)
    assert report.period.as_of == END and report.generated_at == END
    assert report.period.hijri_start == HijriDate(1447, 12, 3)
    assert report.season is not None and report.season.hijri_year == 1447
    c = report.counts
    # received C D E F G; launched C D E F; completed C (on time) D (late) H (on time); cancelled F
    assert (c.received, c.launched, c.completed, c.completed_on_time, c.cancelled) == (5, 4, 3, 2, 1)
    # open at 12:00: A, B (in supervisor review), E; overdue: B; steps due today: E's acknowledge
    assert (c.open, c.overdue, c.steps_due) == (3, 1, 1)
    assert (c.escalations_raised, c.escalations_resolved) == (1, 1)  # D's, raised 07:00 and resolved 09:00
    assert c.on_time_rate == pytest.approx(2 / 3, abs=1e-4)

    [step] = report.steps_due
    assert (step.reference, step.step, step.entity, step.due_at) == ("1447/E", "acknowledge", TRANSPORT,
                                                                      at(2026, 5, 20, 17))
    [late] = report.overdue
    assert (late.reference, late.entity, late.escalation_level) == ("1447/B", TRANSPORT, 1)
    assert late.deadline_at == at(2026, 5, 19, 15) and late.days_late == 0.9  # 21 hours
    [level] = report.escalations
    assert (level.level, level.raised, level.resolved) == (1, 1, 1)

    rows = {r.entity.code: (r.open, r.due_today, r.overdue, r.done, r.done_on_time, r.on_time_rate)
            for r in report.entities}
    assert rows == {
        "transport": (2, 1, 1, 0, 0, None),  # B overdue, E due today
        "housing": (1, 0, 0, 2, 2, 1.0),  # A open; C and H done on time
        "civil_defence": (0, 0, 0, 1, 0, 0.0),  # D done late
    }
    assert [r.entity.code for r in report.entities] == ["transport", "housing", "civil_defence"]
    assert report.feedback is None  # no pilgrim feedback source yet (issue 9)
    assert report.source.audit_event_id > 0 and report.source.schema_revision


def test_daily_report_of_a_past_day_describes_the_end_of_that_day(world):
    with world.db.reading() as session:
        report = daily(session, date(2026, 5, 19))
    assert report.period.as_of == at(2026, 5, 19, 21)
    c = report.counts
    assert (c.received, c.launched, c.completed, c.cancelled) == (3, 3, 0, 0)  # A B H
    assert (c.open, c.overdue, c.escalations_raised, c.escalations_resolved) == (3, 1, 1, 0)
    # H's acknowledge was due 05-20 16:00 and A's 05-21: nothing was due on the 19th but B (withdrawn at 15:00)
    assert report.steps_due == []
    [late] = report.overdue
    assert late.reference == "1447/B" and late.days_late == 0.2 and late.escalation_level == 1  # 6 hours
    # at the end of the 19th D's escalation did not exist yet, and B's was open
    with world.db.reading() as session:
        later = daily(session, date(2026, 5, 20))
    assert [o.escalation_level for o in later.overdue] == [1]


def test_daily_report_scoped_to_a_season(world):
    with world.db.reading() as session:
        previous = seasons.get_season(session, 1446)
        report = daily(session, DAY, previous)
    assert report.counts.received == 0 and report.entities == [] and report.season.hijri_year == 1446


def test_a_future_day_is_refused(world):
    with world.db.reading() as session, pytest.raises(InvalidInput, match="not begun"):
        daily(session, DAY + timedelta(days=1))


def test_periodic_report_trends_durations_and_longest_overdue(world):
    with world.db.reading() as session:
        report = periodic(session, date(2026, 5, 18), DAY)
    assert [d.day for d in report.days] == [date(2026, 5, 18), date(2026, 5, 19), DAY]
    assert [(d.received, d.launched, d.completed, d.completed_on_time, d.cancelled, d.escalations_raised, d.overdue)
            for d in report.days] == [(1, 1, 1, 1, 0, 0, 0), (3, 3, 0, 0, 0, 1, 1), (5, 4, 3, 2, 1, 1, 1)]
    assert report.totals == {"received": 9, "launched": 8, "completed": 4, "completed_on_time": 3, "cancelled": 1,
                             "escalations_raised": 2, "overdue_at_end": 1}
    entities = {r.key: (r.received, r.launched, r.completed, r.completed_on_time, r.cancelled,
                        r.escalations_raised, r.overdue_at_end, r.completed_by_day, r.overdue_by_day)
                for r in report.entities}
    assert entities == {
        "housing": (4, 4, 2, 2, 1, 0, 0, [0, 0, 2], [0, 0, 0]),  # A H C F
        "transport": (3, 3, 1, 1, 0, 1, 1, [1, 0, 0], [0, 1, 1]),  # I B E
        "civil_defence": (2, 1, 1, 0, 0, 1, 0, [0, 0, 1], [0, 0, 0]),  # D G
    }
    assert report.entities[0].key == "transport"  # most overdue first
    tracks = {r.key: (r.received, r.completed, r.overdue_at_end) for r in report.tracks}
    assert tracks == {"business": (6, 2, 1), "technology": (1, 0, 0), "human_resources": (2, 2, 0)}
    assert [r.key for r in report.tracks] == ["business", "technology", "human_resources"]

    # acknowledged: I 1 h, C 2 h, H 22 h; completed: I 1 h, C 2 h, D 7 h, H 22 h
    assert report.acknowledge == DurationStats(3, round(25 / 3, 2), 22.0)
    assert report.complete == DurationStats(4, 8.0, 22.0)
    by_entity = {r.key: (r.acknowledge, r.complete) for r in report.durations_by_entity}
    assert by_entity == {
        "housing": (DurationStats(2, 12.0, 22.0), DurationStats(2, 12.0, 22.0)),
        "transport": (DurationStats(1, 1.0, 1.0), DurationStats(1, 1.0, 1.0)),
        "civil_defence": (DurationStats(0, None, None), DurationStats(1, 7.0, 7.0)),
    }
    by_track = {r.key: (r.acknowledge.count, r.complete.count, r.complete.mean_hours)
                for r in report.durations_by_track}
    assert by_track == {"business": (2, 2, 1.5), "human_resources": (1, 2, 14.5)}
    assert [(o.reference, o.days_late) for o in report.longest_overdue] == [("1447/B", 0.9)]


def test_seasonal_report_with_the_previous_season_side_by_side(world):
    with world.db.reading() as session:
        report = seasonal(session, seasons.get_season(session, 1447))
    assert report.period.start == date(2026, 4, 18) and report.period.end == date(2026, 7, 16)
    assert report.period.as_of == END
    t = report.current.totals
    assert (t.total, t.draft, t.active, t.completed, t.completed_on_time, t.cancelled) == (9, 1, 3, 4, 3, 1)
    assert (t.overdue, t.escalated, t.extended) == (1, 2, 0)
    assert t.on_time_rate == 0.75 and t.completion_rate == round(4 / 7, 4) and t.escalation_rate == 0.25
    assert t.completion == DurationStats(4, 8.0, 22.0)
    figures = {g.key: (g.total, g.completed, g.completed_on_time, g.overdue, g.escalated)
               for g in report.current.by_entity}
    assert figures == {"housing": (4, 2, 2, 0, 0), "transport": (3, 1, 1, 1, 1), "civil_defence": (2, 1, 0, 0, 1)}
    assert [g.key for g in report.current.by_entity] == ["housing", "transport", "civil_defence"]
    # the same figures by track, kind and programme track, counted here from the world's table
    from tests.test_reports_world import DIRECTIVES

    def expected(position: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for year, *attrs in DIRECTIVES.values():
            if year == 1447:
                out[attrs[position]] = out.get(attrs[position], 0) + 1
        return out

    assert {g.key: g.total for g in report.current.by_track} == expected(2)
    assert {g.key: g.total for g in report.current.by_kind} == expected(1)
    assert {g.key: g.total for g in report.current.by_programme_track} == expected(3)
    assert [g.key for g in report.current.by_kind] == ["decision", "circular", "directive", "recommendation"]
    assert [(b.key, b.count) for b in report.current.completion_buckets] == [
        ("le_6h", 2), ("6_24h", 2), ("1_3d", 0), ("3_7d", 0), ("gt_7d", 0)]
    assert [(x.level, x.raised, x.resolved, x.open) for x in report.current.escalations_by_level] == [(1, 2, 1, 1)]

    assert report.previous is not None and report.previous.season.hijri_year == 1446
    p = report.previous.totals
    assert (p.total, p.draft, p.completed, p.completed_on_time, p.escalated) == (3, 1, 2, 1, 1)
    assert p.completion == DurationStats(2, 2.0, 3.0)  # P1 1 h, P2 3 h
    assert [(x.level, x.raised, x.resolved, x.open) for x in report.previous.escalations_by_level] == [(1, 1, 0, 1)]

    obstacles = [(o.tag, o.count, o.previous_count, [e.code for e in o.entities], [e.code for e in o.previous_entities])
                 for o in report.obstacles]
    assert obstacles == [
        ("safety", 1, 2, ["housing"], ["housing", "transport"]),
        ("bus_delay", 1, 1, ["transport"], ["transport"]),
        ("lifts", 1, 1, ["housing"], ["housing"]),
    ]
    assert report.feedback is None


def test_seasonal_report_without_a_previous_season(world):
    with world.db.reading() as session:
        report = seasonal(session, seasons.get_season(session, 1446))
    assert report.previous is None and report.obstacles == []
    assert report.current.totals.total == 3


def _statements(db) -> tuple[list[int], list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    sizes = []
    try:
        with db.reading() as session:
            for make in (lambda: daily(session, DAY), lambda: periodic(session, DAY - timedelta(days=6), DAY),
                         lambda: seasonal(session, seasons.get_season(session, 1447))):
                before = len(statements)
                make()
                sizes.append(len(statements) - before)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return sizes, statements


def test_report_queries_are_set_based(world):
    """The number of statements does not grow with the number of directives, and no workflow state is read."""
    sizes, statements = _statements(world.db)
    # The forecast and the bottlenecks join process_instance for its status and model: never its state.
    assert not any("process_instance.state" in s for s in statements)
    with world.db.transaction() as session:
        for n in range(6):
            directives.create(session, NewDirective(
                title=f"توجيه إضافي {n}", kind="directive", responsible_entity=("housing", "transport")[n % 2],
                deadline="PT1H", process_model_key="deadline", tags=["safety"], season_year=1447,
            ), "secretariat", launch_now=True)
    clock.set_now(END + timedelta(hours=2))
    timers.run_until_idle(world.db)
    clock.set_now(END + timedelta(hours=3))
    more, _ = _statements(world.db)
    assert more == sizes
    with world.db.reading() as session:
        assert daily(session, DAY).counts.overdue == 7  # B and the six new ones


def test_feedback_received_in_the_period_makes_the_feedback_section(world):
    with world.db.reading() as session:
        assert daily(session, DAY).feedback is None  # no feedback: no section
    with world.db.transaction() as session:
        for rating in (2, 5):
            pilgrim_feedback.record(session, pilgrim_feedback.NewFeedback(
                service="housing", rating=rating, text_ar="المصاعد في السكن معطلة منذ يومين", entity="housing",
                received_at=at(2026, 5, 20, 9)), "test")
    with world.db.reading() as session:
        report = daily(session, DAY)
    assert report.feedback is not None and report.feedback.responses == 2 and report.feedback.mean_rating == 3.5
    assert report.feedback.by_entity == [FeedbackEntityRow(HOUSING, 2, 3.5, 1)]
    assert [c.rating for c in report.feedback.comments] == [2, 5]


def test_percentile_is_nearest_rank_and_reports_are_plain_data(world):
    assert percentile([1, 2, 7, 22], 90) == 22 and percentile([5], 90) == 5
    assert percentile(list(range(1, 101)), 90) == 90 and percentile(list(range(1, 11)), 50) == 5
    clock.set_now(END)
    with world.db.reading() as session:
        data = as_dict(daily(session, DAY))
    assert data["period"]["hijri_start"]["iso"] == "1447-12-03" and data["counts"]["received"] == 5
