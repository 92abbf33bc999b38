"""Faults: timer workers killed with SIGKILL in the middle of their batches lose nothing and repeat
nothing; a database constraint, not only the code, makes a second escalation of one firing impossible."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from engine import clock, instances
from engine.escalations import Escalation
from engine.instances import ProcessInstance
from tests.helpers import deploy, start

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)
DUE = T0 + timedelta(hours=1)
INSTANCES, WORKERS, KILLS = 5000, 3, 20


def _clone_instances(db, instance_id: int, copies: int) -> None:
    """Many identical due instances in one statement (starting 5,000 through the engine takes long)."""
    columns = ("model_id, business_key, status, business_status, state, next_timer_at, started_by, started_at, "
               "updated_at, lock_version")
    with db.engine.begin() as connection:
        connection.execute(text(
            f"INSERT INTO process_instance ({columns}) "
            f"SELECT {columns.replace('business_key', 'business_key || n::text')} "
            "FROM process_instance, generate_series(1, :copies) AS n WHERE id = :id"
        ), {"copies": copies, "id": instance_id})


def _worker(database_url: str) -> subprocess.Popen:
    env = dict(os.environ, TANSIQ_DATABASE_URL=database_url, TANSIQ_TIMER_POLL_SECONDS="0.05",
               TANSIQ_TIMER_BATCH_SIZE="10")
    command = [sys.executable, "-m", "api.cli", "timers", "run", "--now", (DUE + timedelta(minutes=1)).isoformat()]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _due(db) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count()).select_from(ProcessInstance)
                              .where(ProcessInstance.status == instances.RUNNING))


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_killed_timer_workers_escalate_every_instance_exactly_once(db, database_url):
    deploy(db, "timer-escalate.bpmn")
    clock.set_now(T0)
    first = start(db, "timer_escalate", {"deadline": DUE.isoformat()})
    _clone_instances(db, first, INSTANCES - 1)
    rng = random.Random(7)
    workers = [_worker(database_url) for _ in range(WORKERS)]
    born = [time.monotonic()] * WORKERS
    kills, deadline = 0, time.monotonic() + 240
    try:
        while _due(db) and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.1, 0.3))
            # Kill only a worker that has been up long enough to be in the middle of its batches
            # (start-up takes about a second): a kill during start-up proves nothing.
            ready = [n for n in range(WORKERS) if time.monotonic() - born[n] > 2.5]
            if kills < KILLS and ready:
                victim = rng.choice(ready)
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait(timeout=10)
                workers[victim], born[victim] = _worker(database_url), time.monotonic()
                kills += 1
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
    assert kills == KILLS, f"only {kills} kills happened before the work ran out; make the run longer"
    assert _due(db) == 0
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == INSTANCES
        assert session.scalar(select(func.count(func.distinct(Escalation.instance_id)))) == INSTANCES
        assert session.scalar(select(func.count()).select_from(ProcessInstance)
                              .where(ProcessInstance.status == instances.COMPLETED)) == INSTANCES


def test_the_database_refuses_a_second_escalation_of_one_firing(db):
    deploy(db, "timer-escalate.bpmn")
    clock.set_now(T0)
    instance_id = start(db, "timer_escalate", {"deadline": DUE.isoformat()})
    row = {"instance_id": instance_id, "source_key": "escalate_overdue#1", "element_id": "escalate_overdue",
           "level": 1, "reason": "overdue", "target_role": "supervisor", "status": "open", "raised_at": T0}
    with db.transaction() as session:
        session.add(Escalation(**row))
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(Escalation(**row))
