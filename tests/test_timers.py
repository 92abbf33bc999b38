"""Timers: reminders (non-interrupting) and deadlines (interrupting) fire exactly once, driven
by the engine's clock hook, the `--now` option of the CLI, and several worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine.foundation import clock
from engine.storage.db import Database
from engine.system import migrate
from engine.work import instances, timers
from engine.work.escalations import Escalation
from engine.work.notifications import Notification
from tests.helpers import (
    deploy,
    escalations,
    instance,
    notifications,
    open_items,
    register_entities,
    start,
    the_open_item,
)

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)
DEADLINE = T0 + timedelta(hours=3)
DATA = {"responsible_entity": "housing", "deadline": DEADLINE.isoformat()}


def _tansiq(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TANSIQ_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_next_timer_at_is_the_earliest_waiting_timer(db):
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "deadline", DATA)
    assert instance(db, instance_id).next_timer_at == DEADLINE - timedelta(hours=1)


def test_nothing_fires_before_it_is_due(db):
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "deadline", DATA)
    clock.set_now(DEADLINE - timedelta(hours=1, seconds=1))
    assert timers.run_until_idle(db).processed == 0
    assert notifications(db, instance_id) == [] and escalations(db, instance_id) == []


def test_reminder_fires_once_and_leaves_the_step_open(db):
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "deadline", DATA)
    clock.set_now(DEADLINE - timedelta(minutes=30))
    assert timers.run_until_idle(db).fired == 1
    assert timers.run_until_idle(db).processed == 0
    clock.set_now(DEADLINE - timedelta(minutes=5))
    assert timers.run_until_idle(db).processed == 0
    [reminder] = notifications(db, instance_id)
    assert (reminder.template, reminder.recipient_entity) == ("reminder", "housing")
    assert the_open_item(db, instance_id, "acknowledge").status == "open"
    assert instance(db, instance_id).next_timer_at == DEADLINE


def test_deadline_fires_once_withdraws_the_step_and_escalates(db):
    register_entities(db, "housing")
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "deadline", DATA)
    clock.set_now(DEADLINE - timedelta(minutes=30))
    timers.run_until_idle(db)
    clock.set_now(DEADLINE + timedelta(seconds=1))
    assert timers.run_until_idle(db).fired == 1
    clock.set_now(DEADLINE + timedelta(days=3))
    assert timers.run_until_idle(db).processed == 0
    [escalation] = escalations(db, instance_id)
    assert (escalation.level, escalation.target_role, escalation.reason) == (1, "supervisor", "unacknowledged")
    assert escalation.raised_at == DEADLINE + timedelta(seconds=1)
    assert [i.element_id for i in open_items(db, instance_id)] == ["supervisor_review"]
    assert sorted(n.template for n in notifications(db, instance_id)) == ["escalation", "reminder"]
    assert instance(db, instance_id).next_timer_at is None


def test_acknowledging_in_time_disarms_both_timers(db):
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "deadline", DATA)
    with db.transaction() as session:
        instances.complete_task(session, the_open_item(db, instance_id, "acknowledge").id, {}, "housing.user")
    assert instance(db, instance_id).status == instances.COMPLETED
    clock.set_now(DEADLINE + timedelta(days=1))
    assert timers.run_until_idle(db).processed == 0
    assert escalations(db, instance_id) == [] and notifications(db, instance_id) == []


def test_an_instance_that_cannot_fire_is_skipped_and_the_rest_of_its_batch_fires(db):
    """A batch fires without a savepoint per instance; when one instance fails (here: its escalation's key
    is taken, as when another worker got there first), the batch runs again with one savepoint each."""
    register_entities(db, "housing")
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    blocked, healthy = start(db, "deadline", DATA), start(db, "deadline", DATA)
    with db.transaction() as session:
        session.add(Escalation(instance_id=blocked, source_key="escalate_level_1#1", element_id="planted", level=1,
                               reason="manual", target_role="supervisor", raised_at=T0))
    clock.set_now(DEADLINE + timedelta(seconds=1))
    result = timers.run_due_batch(db)
    assert (result.fired, result.incidents) == (1, [])
    assert [e.element_id for e in escalations(db, healthy)] == ["escalate_level_1"]
    assert [e.element_id for e in escalations(db, blocked)] == ["planted"]
    assert notifications(db, blocked) == [] and instance(db, blocked).next_timer_at == DEADLINE - timedelta(hours=1)
    assert the_open_item(db, blocked, "acknowledge").status == "open"


def test_a_model_failing_after_its_escalation_is_an_incident_and_keeps_no_escalation(db):
    """The batch takes no savepoints: the failure after `escalate` wrote sends it round again with them,
    where it is an incident without the escalation; the healthy instance of the batch fires once."""
    deploy(db, "timer-escalate-then-fail.bpmn")
    clock.set_now(T0)
    failing = start(db, "timer_escalate_then_fail", {**DATA, "fail": True})
    healthy = start(db, "timer_escalate_then_fail", {**DATA, "fail": False})
    clock.set_now(DEADLINE + timedelta(seconds=1))
    result = timers.run_due_batch(db)
    assert (result.fired, result.incidents) == (1, [failing])
    stopped = instance(db, failing)
    assert stopped.status == instances.INCIDENT and stopped.incident_element == "check"
    assert escalations(db, failing) == [] and notifications(db, failing) == []
    assert instance(db, healthy).status == instances.COMPLETED
    assert [e.element_id for e in escalations(db, healthy)] == ["escalate_overdue"]
    assert len(notifications(db, healthy)) == 1


def test_the_cli_fires_timers_at_a_given_moment(db, database_url):
    register_entities(db, "housing")
    deploy(db, "deadline.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "deadline", DATA)
    at_reminder = (DEADLINE - timedelta(minutes=10)).isoformat()
    first = _tansiq(database_url, "timers", "run", "--once", "--now", at_reminder)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "fired 1, incidents 0"
    again = _tansiq(database_url, "timers", "run", "--once", "--now", at_reminder)
    assert again.stdout.strip() == "fired 0, incidents 0"
    later = (DEADLINE + timedelta(hours=1)).isoformat()
    after_deadline = _tansiq(database_url, "timers", "run", "--once", "--now", later)
    assert after_deadline.stdout.strip() == "fired 1, incidents 0"
    assert len(notifications(db, instance_id)) == 2 and len(escalations(db, instance_id)) == 1
    bad = _tansiq(database_url, "timers", "run", "--once", "--now", "yesterday")
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: not an ISO 8601 date")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # several workers: PostgreSQL's case
def test_two_worker_processes_share_due_instances_exactly_once(db, database_url):
    deploy(db, "deadline.bpmn")
    register_entities(db, "housing")
    clock.set_now(T0)
    with db.transaction() as session:
        for n in range(1000):
            instances.start(session, "deadline", DATA, "seed", business_key=f"1447/{n}")
    moment = (DEADLINE + timedelta(minutes=1)).isoformat()
    env = dict(os.environ, TANSIQ_DATABASE_URL=database_url)
    command = [sys.executable, "-m", "api.cli", "timers", "run", "--once", "--now", moment, "--batch-size", "25"]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    fired = [int(out.split()[1].rstrip(",")) for out, _ in outputs]
    assert sum(fired) == 1000, outputs
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == 1000
        assert session.scalar(select(func.count(func.distinct(Escalation.instance_id)))) == 1000
        # Both timers were due at that moment: each reminder, and each escalation's notice, exactly once.
        assert session.scalar(select(func.count()).select_from(Notification)) == 2000
        assert session.scalar(select(func.count(func.distinct(Notification.instance_id)))) == 1000
    print(f"\nworker share of 1,000 due instances: {fired}")


def test_the_poll_reads_only_due_instances_in_order_on_sqlite(tmp_path) -> None:
    """SQLite keeps no statistics: with next_timer_at indexed alone it chose the status index, read every
    running instance and sorted them all (PostgreSQL's plans: tests/test_query_plans.py)."""
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    migrate.upgrade(url)
    database = Database(url)
    try:
        compiled = timers.due(T0, 100, skip_locked=False).compile(database.engine)
        with database.engine.connect() as connection:
            plan = [row[-1] for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params[name] for name in compiled.positiontup))]
    finally:
        database.dispose()
    assert any("USING INDEX ix_process_instance_due (status=? AND next_timer_at<?)" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
