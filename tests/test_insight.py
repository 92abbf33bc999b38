"""Insight from kept figures: the heatmap's figures per step (engine/work/step_figures.py,
engine/insight/bottlenecks.py) and the escalation forecast (engine/work/escalation_timers.py,
engine/insight/forecast.py), against hand-computed cases, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.bpmn import process_models
from engine.calendar import seasons
from engine.calendar.business_calendar import SEASON, WORKING_DAYS, BusinessCalendar, working_hours_between
from engine.calendar.durations import RIYADH
from engine.directives import directives
from engine.foundation import clock
from engine.insight import bottlenecks, forecast
from engine.insight.bottlenecks import HeatFilter
from engine.insight.forecast import History
from engine.system import migrate
from engine.work import step_figures
from engine.work.escalation_timers import SetEscalationTimer
from engine.work.step_figures import BUCKET_FIGURES, FIGURES, KEYS, StepTally
from tests.test_shipped_models import (
    DEADLINE,
    NEW_DEADLINE,
    STANDARD,
    T0,
    WORK,
    at,
    do,
    launch,
    request_extension,
    seed_world,
)

HOUR = timedelta(hours=1)


@pytest.fixture
def world(db):
    return seed_world(db)


def _kept(db) -> dict:
    with db.reading() as session:
        rows = session.execute(select(StepTally.__table__)).mappings().all()
    return {tuple(r[k] for k in KEYS): {n: r[n] for n in FIGURES if r[n]} for r in rows}


def _recounted(db) -> dict:
    with db.engine.connect() as connection:
        transaction = connection.begin()
        step_figures.recount(connection)
        rows = connection.execute(select(StepTally.__table__)).mappings().all()
        transaction.rollback()
    return {tuple(r[k] for k in KEYS): {n: r[n] for n in FIGURES if r[n]} for r in rows}


def _model_ids(db, key: str) -> list[int]:
    with db.reading() as session:
        return [m.id for m in process_models.list_versions(session, key)]


def _heat(db, key: str = STANDARD, **where) -> dict[str, bottlenecks.StepHeat]:
    with db.reading() as session:
        return bottlenecks.heatmap(session, _model_ids(db, key), HeatFilter(**where))


def _worked_with_a_return(db):
    """Acknowledged after 3 h, executed after 7 h, returned, executed again 49 h later (past the deadline)."""
    run = launch(db, STANDARD)
    clock.set_now(T0 + 3 * HOUR)
    do(db, run, "acknowledge", {"note": "received"}, "housing")
    clock.set_now(T0 + 10 * HOUR)
    do(db, run, "execute", WORK, "housing")
    clock.set_now(T0 + 11 * HOUR)
    do(db, run, "verify", {"accepted": False, "reason": "the photos are missing"})
    clock.set_now(T0 + 60 * HOUR)
    do(db, run, "execute", WORK, "housing")
    return run


def test_each_steps_time_open_overdue_share_and_rework_are_kept(world):
    _worked_with_a_return(world)
    heat = _heat(world)
    acknowledge, execute, verify = heat["acknowledge"], heat["execute"], heat["verify"]
    assert (acknowledge.opened, acknowledge.completed, acknowledge.open_now, acknowledge.late) == (1, 1, 0, 0)
    assert acknowledge.p50 == pytest.approx(3.0)  # one visit of 3 h, in the 2-4 h bucket: its middle
    assert (execute.opened, execute.completed, execute.reworks, execute.late) == (2, 2, 1, 1)
    assert execute.overdue_share == pytest.approx(0.5) and execute.rework_share == pytest.approx(0.5)
    assert execute.hours == pytest.approx(7 + 49)
    assert execute.histogram[BUCKET_FIGURES.index(step_figures.bucket_of(7))] == 1
    assert execute.histogram[BUCKET_FIGURES.index(step_figures.bucket_of(49))] == 1
    assert (verify.opened, verify.completed, verify.open_now) == (2, 1, 1)  # the second verification is open
    assert _kept(world) == _recounted(world)


def test_kept_hours_count_a_working_days_seasons_days_as_the_recount_does(world):
    """The commit takes the season's calendar from the objects the operation holds (no query): a working-days
    season with a holiday on the day the work crosses gives the recount's figures."""
    with world.transaction() as session:
        seasons.update_season(session, seasons.get_season(session, 1447), calendar_mode="working_days",
                              holidays=["2026-05-21"])
    _worked_with_a_return(world)
    heat = _heat(world)
    assert heat["execute"].hours < 7 + 49  # the Friday, the Saturday and the holiday are not working hours
    assert _kept(world) == _recounted(world)


def test_an_open_step_past_due_counts_as_overdue_now(world):
    launch(world, STANDARD)
    clock.set_now(DEADLINE + HOUR)  # nobody acknowledged; the timers are not run: only the clock moved
    heat = _heat(world)
    assert (heat["acknowledge"].open_now, heat["acknowledge"].overdue_now) == (1, 1)
    assert heat["acknowledge"].overdue_share == 1.0
    assert _heat(world, entity="transport") == {}, "another entity's filter sees none of it"


def test_the_filters_select_season_entity_track_and_the_opening_days(world):
    _worked_with_a_return(world)
    with world.reading() as session:
        season = seasons.get_season(session, 1447)
    opened_on = T0.astimezone(RIYADH).date()
    assert _heat(world, season_id=season.id, entity="housing", track="business")["execute"].opened == 2
    assert _heat(world, opened_from=opened_on, opened_until=opened_on)["execute"].opened == 2
    assert "execute" not in _heat(world, opened_from=opened_on + timedelta(days=1))
    assert _heat(world, track="technology") == {}
    assert _heat(world, season_id=season.id + 1) == {}


def test_bands_colour_by_the_measure_asked_for():
    steps = {name: bottlenecks.StepHeat(name, opened=10, late=late, open_now=open_now)
             for name, late, open_now in (("a", 0, 1), ("b", 2, 2), ("c", 4, 3), ("d", 9, 8))}
    assert bottlenecks.band(steps, "overdue") == [0.10, 0.25, 0.50]
    assert [steps[n].band for n in "abcd"] == [0, 1, 2, 3]  # 0 %, 20 %, 40 %, 90 % overdue
    assert bottlenecks.band(steps, "open") == [2.0, 4.0, 6.0]
    assert [steps[n].band for n in "abcd"] == [0, 0, 1, 3]
    assert [s.element_id for s in bottlenecks.top_bottlenecks(steps, 2)] == ["d", "c"]


def test_percentiles_read_the_buckets():
    histogram = [0] * len(BUCKET_FIGURES)
    histogram[BUCKET_FIGURES.index("h09")] = 10  # ten visits between 24 and 36 hours
    assert bottlenecks.percentile(histogram, 0.5) == pytest.approx(30.0)
    assert bottlenecks.percentile(histogram, 0.9) == pytest.approx(34.8)
    assert bottlenecks.percentile([0] * len(BUCKET_FIGURES), 0.5) is None


def test_survival_counts_the_visits_still_open_as_lasting_at_least_their_age():
    completed = _history(h09=10)  # ten visits between 24 and 36 hours
    assert completed.survival(24) == 1.0 and completed.survival(36) == 0.0
    assert completed.survival(27) == pytest.approx(0.75)
    # Ten completed within 4-6 h, ten still open at 12-18 h: a plain share would say nobody lasts 6 h.
    mixed = History(_history(h04=10).histogram, _history(h07=10).histogram)
    assert _history(h04=10).survival(6) == 0.0
    assert mixed.survival(6) == pytest.approx(1 - 10 / 20)  # half of those at risk completed by 6 h
    assert mixed.survival(100) == pytest.approx(0.5)  # the open ones' fate is unknown: not counted as done


# --- the forecast ---------------------------------------------------------------------------------------

def _ahead(db, now: datetime, entity: str | None = None) -> dict[tuple[str, int], dict[int, int]]:
    with db.reading() as session:
        return {(o.entity, o.level): o.within for o in forecast.escalations_ahead(session, now, entity=entity)}


def test_the_escalations_of_the_next_hours_come_from_the_timers_set(world):
    run = launch(world, STANDARD)  # deadline T0 + 48 h: level 1 then, level 2 a day later (normal priority)
    now = T0 + 30 * HOUR
    assert _ahead(world, now) == {("housing", 1): {24: 1, 72: 1}, ("housing", 2): {24: 0, 72: 1}}
    assert _ahead(world, now, entity="transport") == {}
    with world.reading() as session:
        coming = forecast.coming_escalations(session, now)
    assert [(c.level, c.due_at, c.directive_id) for c in coming] == [
        (1, DEADLINE, run.directive_id), (2, DEADLINE + timedelta(days=1), run.directive_id)]


def test_an_extension_moves_the_forecast_with_the_timers(world):
    run = launch(world, STANDARD)
    request_extension(world, run)  # to NEW_DEADLINE, two days later
    do(world, run, "review_extension", {"approved": True, "note": "agreed"})
    now = T0 + 30 * HOUR
    assert _ahead(world, now) == {("housing", 1): {24: 0, 72: 1}}  # level 1 at T0 + 96 h; level 2 beyond 72 h
    with world.reading() as session:
        assert [c.due_at for c in forecast.coming_escalations(session, now)] == [NEW_DEADLINE]


def test_a_fired_level_leaves_the_forecast_and_a_closed_directive_takes_all_with_it(world):
    run = launch(world, STANDARD)
    at(world, DEADLINE + HOUR)  # level 1 fired
    assert _ahead(world, DEADLINE + HOUR) == {("housing", 2): {24: 1, 72: 1}}
    with world.transaction() as session:
        directives.cancel(session, run.directive_id, "secretariat", "no longer needed")
    assert _ahead(world, DEADLINE + HOUR) == {}


def _history(**counts: int) -> History:
    return History(tuple(counts.get(name, 0) for name in BUCKET_FIGURES))


THURSDAY_10 = datetime(2026, 5, 21, 10, tzinfo=RIYADH).astimezone(UTC)


def test_a_friday_does_not_count_in_a_sunday_to_thursday_calendar():
    history = _history(h09=10)  # the entity took 24 to 36 working hours, ten times
    now, due = THURSDAY_10 + 4 * HOUR, THURSDAY_10 + 76 * HOUR  # Thursday 14:00, due Sunday 14:00
    working = BusinessCalendar(WORKING_DAYS)
    assert working_hours_between(working, now, due) == pytest.approx(24)  # Thursday 10 h + Sunday 14 h
    in_season = forecast.estimate(THURSDAY_10, due, now, BusinessCalendar(SEASON), history, None, None)
    assert (in_season.probability, in_season.left_hours) == (0.0, 72)  # 76 h is longer than every visit
    weekend = forecast.estimate(THURSDAY_10, due, now, working, history, None, None)
    # S(28) / S(4): of the visits still open at 4 h (all), those open past 28 h: (36 - 28) / 12 of them
    assert (weekend.probability, weekend.basis, weekend.visits) == (pytest.approx(8 / 12), forecast.ENTITY, 10)


def test_a_step_already_overdue_has_missed_and_thin_histories_fall_back():
    now = THURSDAY_10 + 5 * HOUR
    overdue = forecast.estimate(THURSDAY_10, now - HOUR, now, BusinessCalendar(), _history(h09=10), None, None)
    assert (overdue.probability, overdue.basis) == (1.0, forecast.OVERDUE)
    thin, pooled = _history(h09=4), _history(h03=10, h09=2)
    due = THURSDAY_10 + 30 * HOUR
    fallback = forecast.estimate(THURSDAY_10, due, now, BusinessCalendar(), thin, pooled, 0.3)
    assert (fallback.basis, fallback.visits) == (forecast.EVERY_ENTITY, 12)
    assert fallback.probability == pytest.approx(forecast.miss_probability(pooled, 5, 25))
    baseline = forecast.estimate(THURSDAY_10, due, now, BusinessCalendar(), thin, thin, 0.3)
    assert (baseline.probability, baseline.basis) == (0.3, forecast.BASELINE)
    assert forecast.estimate(THURSDAY_10, due, now, BusinessCalendar(), None, None, None) is None


def test_open_steps_are_ranked_by_the_entitys_own_history(world):
    run = launch(world, STANDARD)  # acknowledge is due at the deadline, T0 + 48 h
    with world.transaction() as session:
        season_id = seasons.get_season(session, 1447).id
        model_id = _model_ids(world, STANDARD)[0]
        row = {**dict.fromkeys(FIGURES, 0), "process_model_id": model_id, "season_id": season_id,
               "element_id": "acknowledge", "entity": "housing", "track": "business", "opened_on": date(2026, 5, 1)}
        session.execute(StepTally.__table__.insert(), [{**row, "completed": 20, "h09": 10, "h11": 10}])
    now = T0 + 20 * HOUR  # open 20 h, 28 h left: half took 24-36 h, half 48-72 h
    with world.reading() as session:
        ahead = forecast.outlook(session, now, entity="housing")
        assert forecast.outlook(session, now, entity="transport").steps == []
    risks = ahead.steps
    assert (ahead.due_total, ahead.expected_total, ahead.likely_total) == (1, pytest.approx(0.5), 1)
    assert [(r.element_id, r.directive_id) for r in risks] == [("acknowledge", run.directive_id)]
    assert risks[0].estimate.basis == forecast.ENTITY and risks[0].estimate.visits == 20
    assert risks[0].estimate.probability == pytest.approx(0.5)  # the 48-72 h half misses a 48 h due moment


def _timers(db) -> list[tuple]:
    with db.reading() as session:
        table = SetEscalationTimer.__table__
        return sorted(session.execute(select(table.c.instance_id, table.c.element_id, table.c.level, table.c.entity,
                                             table.c.due_at)).all())


def test_the_migration_counts_the_figures_and_the_timers_there_before_it(world):
    launch(world, STANDARD)  # running, its two escalation timers set (the reminder is not an escalation)
    _worked_with_a_return(world)  # another, worked past its deadline: its level 1 fired in that run
    figures, timers = _kept(world), _timers(world)
    assert [level for *_, level, _, _ in timers] == [1, 2, 2]
    url = world.engine.url.render_as_string(hide_password=False)
    world.dispose()
    migrate.downgrade(url, "0011")  # drops both tables
    migrate.upgrade(url)
    assert _kept(world) == figures
    assert _timers(world) == timers
