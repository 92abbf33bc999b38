"""The dashboard's running totals (engine/directives/tallies.py) stay what counting the rows gives, after launches,
completions on time and late, cancellations, reassignments, failed completions and the migration, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.bpmn import process_models
from engine.calendar import seasons
from engine.directives import directives, supervision, tallies
from engine.directives.directives import NewDirective
from engine.directives.tallies import FIGURES, Tally
from engine.foundation import clock
from engine.system import migrate
from engine.work import instances
from tests.helpers import escalations, read_model, season_1447, the_open_item
from tests.test_reports_world import build
from tests.test_supervision import DEADLINE, overdue  # noqa: F401  (a fixture)

Totals = dict[tuple[int, str, str], dict[str, float]]


def _kept(db) -> Totals:
    with db.reading() as session:
        return _without_zeros({(t.season_id, t.entity, t.track): t.figures() for t in tallies.of_season(session, None)})


def _recounted(db) -> Totals:
    """What `tallies.recount` gives, in a transaction rolled back (the kept rows stay as they are)."""
    with db.engine.connect() as connection:
        transaction = connection.begin()
        tallies.recount(connection)
        rows = connection.execute(select(Tally.__table__)).mappings().all()
        transaction.rollback()
    return _without_zeros({(r["season_id"], r["entity"], r["track"]): {n: r[n] for n in FIGURES} for r in rows})


def _without_zeros(totals: Totals) -> Totals:
    return {key: figures for key, figures in totals.items() if any(figures.values())}


def _assert_kept_as_counted(db) -> Totals:
    kept, counted = _kept(db), _recounted(db)
    assert kept.keys() == counted.keys()
    for key, figures in kept.items():
        assert figures == pytest.approx(counted[key], abs=1e-6), key
    return kept


def _season_of(db, directive_id: int) -> int:
    with db.reading() as session:
        return directives.get(session, directive_id).season_id


def test_the_report_world_is_counted_as_its_rows(db):
    world = build(db)
    kept = _assert_kept_as_counted(db)
    housing = kept[(_season_of(db, world.ids["C"]), "housing", "business")]
    assert (housing["active"], housing["completed"], housing["on_time"]) == (1, 1, 1)  # A open, C on time
    assert housing["completion_hours"] == pytest.approx(2.0) and housing["acknowledged"] == 1


def test_a_reassignment_moves_the_active_directive_to_the_new_entity(overdue):  # noqa: F811
    db, directive, escalation = overdue
    with db.transaction() as session:
        supervision.resolve(session, escalation.id, "reassign", "supervisor", "to transport", entity="transport")
    kept = _assert_kept_as_counted(db)
    assert kept[(directive.season_id, "transport", directive.track)]["active"] == 1
    assert (directive.season_id, "housing", directive.track) not in kept


def test_a_directive_closed_after_its_deadline_is_completed_late(overdue):  # noqa: F811
    db, directive, escalation = overdue
    with db.transaction() as session:
        supervision.resolve(session, escalation.id, "close", "supervisor", "done", outcome="done")
    figures = _assert_kept_as_counted(db)[(directive.season_id, "housing", directive.track)]
    assert (figures["active"], figures["completed"], figures["on_time"]) == (0, 1, 0)
    assert figures["completion_hours"] == pytest.approx(48 + 1 / 60)  # launched at T0, closed 2 days 1 min on


def test_a_cancelled_directive_is_no_longer_active(overdue):  # noqa: F811
    db, directive, escalation = overdue
    with db.transaction() as session:
        supervision.resolve(session, escalation.id, "close", "supervisor", "not needed", outcome="cancelled")
    figures = _assert_kept_as_counted(db).get((directive.season_id, "housing", directive.track))
    assert figures is None  # nothing active, nothing completed: as if never counted


HOUSING, TRANSPORT = ("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport")


def _launched_on_a_failing_model(db, process_id: str, replacements: dict[str, str]) -> directives.Directive:
    """A housing directive on a copy of tests/bpmn/incident.bpmn (a user step, a service task, then a script
    that always fails here), changed by `replacements`."""
    clock.set_now(DEADLINE - timedelta(days=2))
    source = read_model("incident.bpmn").decode().replace('id="incident"', f'id="{process_id}"')
    for old, new in replacements.items():
        assert old in source
        source = source.replace(old, new)
    with db.transaction() as session:
        process_models.deploy(session, source.encode(), f"{process_id}.bpmn", "tester")
    season_1447(db, HOUSING, TRANSPORT)
    with db.transaction() as session:
        return directives.create(session, NewDirective(
            title="استكمال تصاريح المساكن", kind="directive", responsible_entity="housing",
            deadline=DEADLINE.isoformat(), process_model_key=process_id), "secretariat", launch_now=True)


def _complete_into_an_incident(db, directive: directives.Directive, element_id: str) -> None:
    with db.transaction() as session:
        instances.complete_task(session, the_open_item(db, directive.instance_id, element_id).id, {}, "housing.user")
    with db.reading() as session:
        assert instances.get_instance(session, directive.instance_id).status == instances.INCIDENT


def test_a_completion_that_fails_is_not_counted(db):
    """The acknowledge step's completion runs into a failing script: the step is open again, not counted."""
    directive = _launched_on_a_failing_model(db, "acknowledge_then_fail", {'"submit"': '"acknowledge"'})
    _complete_into_an_incident(db, directive, "acknowledge")
    figures = _assert_kept_as_counted(db)[(directive.season_id, "housing", directive.track)]
    assert (figures["active"], figures["acknowledged"]) == (1, 0)


def test_a_reassignment_in_a_run_that_fails_is_not_counted(db):
    """The step's completion reassigns the directive, then a script fails: the incident undoes both."""
    directive = _launched_on_a_failing_model(db, "reassign_then_fail", {
        '<spiffworkflow:serviceTaskOperator id="notify" resultVariable="notified">':
            '<spiffworkflow:serviceTaskOperator id="reassign" resultVariable="reassigned">',
        """<spiffworkflow:parameter id="template" type="str" value="'submitted'" />
            <spiffworkflow:parameter id="to_role" type="str" value="'follow_up_officer'" />""":
            """<spiffworkflow:parameter id="entity" type="str" value="'transport'" />"""})
    _complete_into_an_incident(db, directive, "submit")
    with db.reading() as session:
        assert directives.get(session, directive.id).responsible_entity.code == "housing"
    kept = _assert_kept_as_counted(db)
    assert kept[(directive.season_id, "housing", directive.track)]["active"] == 1
    assert (directive.season_id, "transport", directive.track) not in kept


def test_the_migration_counts_what_was_there_before_it(db):
    build(db)
    before = _kept(db)
    url = db.engine.url.render_as_string(hide_password=False)
    db.dispose()
    migrate.downgrade(url, "0004")  # drops the totals with their table
    migrate.upgrade(url)
    after = _kept(db)
    assert after.keys() == before.keys()
    for key, figures in after.items():
        assert figures == pytest.approx(before[key], abs=1e-6), key


def _season_1447_id(db) -> int:
    with db.reading() as session:
        return seasons.get_season(session, 1447).id


def test_what_a_rolled_back_savepoint_added_is_taken_back(db):
    season_1447(db, HOUSING)
    key = (_season_1447_id(db), "housing", "business")
    with db.transaction() as session:
        tallies.add(session, *key, active=1)
        with pytest.raises(RuntimeError), session.begin_nested():
            tallies.add(session, *key, active=5, completed=1)
            raise RuntimeError("the savepoint rolls back")
        with session.begin_nested():
            tallies.add(session, *key, completed=1, completion_hours=2.5)
    with pytest.raises(RuntimeError), db.transaction() as session:
        tallies.add(session, *key, active=100)
        raise RuntimeError("the transaction rolls back")
    assert _kept(db)[key] == {**dict.fromkeys(FIGURES, 0), "active": 1, "completed": 1, "completion_hours": 2.5}


def _open_escalations(totals: Totals) -> dict[str, int]:
    figures = [f"escalations_{level}" for level in tallies.ESCALATION_LEVELS]
    return {name: sum(row[name] for row in totals.values()) for name in figures}


def test_open_escalations_are_counted_by_level_until_resolved(overdue):  # noqa: F811
    db, directive, escalation = overdue
    assert _open_escalations(_assert_kept_as_counted(db)) == {"escalations_1": 1, "escalations_2": 0,
                                                              "escalations_3": 0}
    with db.transaction() as session:
        supervision.resolve(session, escalation.id, "escalate", "supervisor", "to leadership")
    assert _open_escalations(_assert_kept_as_counted(db)) == {"escalations_1": 0, "escalations_2": 1,
                                                              "escalations_3": 0}
    [level_two] = [e for e in escalations(db, directive.instance_id) if e.status == "open"]
    with db.transaction() as session:
        supervision.resolve(session, level_two.id, "extend", "supervisor", "two more days",
                            new_deadline=(DEADLINE + timedelta(days=2)).isoformat())
    assert _open_escalations(_assert_kept_as_counted(db)) == dict.fromkeys(_open_escalations({}), 0)
