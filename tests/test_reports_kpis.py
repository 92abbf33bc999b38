"""The dashboard's KPIs (engine/reports/kpis.py) on the report tests' world (tests/test_reports_world.py),
on SQLite and PostgreSQL. Every expected figure is worked out by hand from that file's timeline: at
2026-05-20 12:00 UTC, season 1447 has A (housing), B (transport, escalated) and E (transport) open;
I (transport, 1 h), C (housing, 2 h) and H (housing, 22 h) completed on time by their acknowledge step;
D (civil defence) completed late by the supervisor's review 7 h after launch; F cancelled, G a draft.
Season 1446 adds P1 (housing, on time in 1 h) and P2 (transport, late, in 3 h, its escalation left open).

"Overdue" is engine.directives.directives.overdue: an open directive past its deadline or with a step past its due
time. B passed its deadline and its acknowledge step was replaced by the supervisor's review, which has
no due time: B is overdue (as in the daily report, which looks at the deadline)."""

from __future__ import annotations

import pytest

from engine.calendar import seasons
from engine.foundation import clock
from engine.foundation.errors import NotFound
from engine.reports.kpis import LEVELS, Kpis, MeanHours, Row, kpis, season_choice
from tests.test_reports_world import END, at, build


@pytest.fixture
def world(db):
    return build(db)


def _kpis(world, year: int | None) -> Kpis:
    with world.db.reading() as session:
        return kpis(session, seasons.get_season(session, year) if year else None)


def _mean(stats: MeanHours) -> tuple[int, float | None]:
    return stats.count, stats.mean_hours


def _counts(row: Row) -> tuple[int, int, int, int, float | None]:
    return row.open, row.overdue, row.completed, row.on_time, row.on_time_rate


def test_a_season_is_counted_per_entity_most_overdue_first(world):
    figures = _kpis(world, 1447)
    assert figures.now == END and figures.levels == LEVELS
    assert [(r.key, r.name_en, r.name_ar) for r in figures.entities] == [
        ("transport", "Transport", "النقل"), ("housing", "Housing", "الإسكان"),
        ("civil_defence", "Civil Defence", "الدفاع المدني")]
    transport, housing, civil_defence = figures.entities
    assert _counts(transport) == (2, 1, 1, 1, 1.0)  # B (overdue) and E open; I on time
    assert _counts(housing) == (1, 0, 2, 2, 1.0)  # A open; C and H on time (F cancelled)
    assert _counts(civil_defence) == (0, 0, 1, 0, 0.0)  # D late (G a draft)
    assert figures.scale == 2
    assert _mean(transport.acknowledge) == (1, 1.0) and _mean(transport.complete) == (1, 1.0)
    assert _mean(housing.acknowledge) == (2, 12.0) and _mean(housing.complete) == (2, 12.0)
    assert _mean(civil_defence.acknowledge) == (0, None)  # D's acknowledge was cut by its deadline
    assert _mean(civil_defence.complete) == (1, 7.0)
    assert (transport.levels, transport.escalations) == ({1: 1}, 1)  # B's, still open (D's was resolved)
    assert housing.escalations == civil_defence.escalations == 0


def test_a_season_is_counted_per_track_and_in_total(world):
    figures = _kpis(world, 1447)
    business, technology, human_resources = figures.tracks
    assert [r.key for r in figures.tracks] == ["business", "technology", "human_resources"]
    assert _counts(business) == (2, 1, 2, 2, 1.0)  # A, B (overdue) open; I, C on time
    assert _counts(technology) == (1, 0, 0, 0, None)  # E open
    assert _counts(human_resources) == (0, 0, 2, 1, 0.5)  # H on time, D late
    assert _mean(business.acknowledge) == (2, 1.5) and business.levels == {1: 1}
    assert _mean(human_resources.complete) == (2, 14.5)
    totals = figures.totals
    assert _counts(totals) == (3, 1, 4, 3, 0.75)
    assert _mean(totals.acknowledge) == (3, 8.33)  # 1, 2 and 22 hours
    assert _mean(totals.complete) == (4, 8.0)  # 1, 2, 22 and 7 hours
    assert totals.levels == {1: 1}


def test_without_a_season_every_directive_counts(world):
    totals = _kpis(world, None).totals
    assert _counts(totals) == (3, 1, 6, 4, pytest.approx(4 / 6, abs=1e-4))  # with P1 on time and P2 late
    assert _mean(totals.acknowledge) == (4, 6.5)  # P1's 1 hour, and 1, 2 and 22
    assert _mean(totals.complete) == (6, 6.0)  # 1, 3, 1, 2, 22 and 7 hours
    assert totals.levels == {1: 2}  # B's and P2's


def test_an_overdue_step_counts_its_directive_as_overdue(world):
    clock.set_now(at(2026, 5, 20, 18))  # E's acknowledge was due at 17:00 (its timer has not run yet)
    figures = _kpis(world, 1447)
    assert [(r.key, r.open, r.overdue) for r in figures.entities][:1] == [("transport", 2, 2)]  # B and E
    assert (figures.totals.overdue, figures.tracks[1].overdue) == (2, 1)  # E is on the technology track


def test_the_season_shown_is_the_one_asked_for_else_today_s(world):
    with world.db.reading() as session:
        listed, chosen = season_choice(session, None)
        assert [s.hijri_year for s in listed] == [1447, 1446] and chosen.hijri_year == 1447
        assert season_choice(session, 1446)[1].hijri_year == 1446
        with pytest.raises(NotFound):
            season_choice(session, 1440)


def test_with_no_season_and_no_directive_every_figure_is_zero(db):
    with db.reading() as session:
        assert season_choice(session, None) == ([], None)
        figures = kpis(session, None)
    assert figures.entities == [] and figures.scale == 1
    assert [_counts(r) for r in figures.tracks] == [(0, 0, 0, 0, None)] * 3
    assert _counts(figures.totals) == (0, 0, 0, 0, None) and figures.totals.levels == {}
