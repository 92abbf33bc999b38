"""Faults: timer workers killed with SIGKILL in the middle of their batches lose nothing and repeat
nothing; a database constraint, not only the code, makes a second escalation of one firing impossible."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from engine.foundation import clock
from engine.work import instances
from engine.work.escalations import Escalation
from engine.work.instances import ProcessInstance
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


class _Worker:
    """A `tansiq timers run` process, and whether it has finished a batch: from then on it runs batch after
    batch while work remains, so a kill lands in the middle of one (a kill during start-up proves nothing)."""

    def __init__(self, database_url: str) -> None:
        env = dict(os.environ, TANSIQ_DATABASE_URL=database_url, TANSIQ_TIMER_POLL_SECONDS="0.05",
                   TANSIQ_TIMER_BATCH_SIZE="10", TANSIQ_LOG_LEVEL="INFO", TANSIQ_LOG_FORMAT="json")
        command = [sys.executable, "-m", "api.cli", "timers", "run", "--now", (DUE + timedelta(minutes=1)).isoformat()]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.batched = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr or ():  # log lines; also drains the pipe, so the worker never blocks on it
            if '"timers fired"' in line:
                self.batched.set()


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
    workers = [_Worker(database_url) for _ in range(WORKERS)]
    kills, deadline = 0, time.monotonic() + 240
    try:
        while _due(db) and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.1, 0.3))
            ready = [n for n in range(WORKERS) if workers[n].batched.is_set()]
            if kills < KILLS and ready:
                victim = rng.choice(ready)
                workers[victim].process.send_signal(signal.SIGKILL)
                workers[victim].process.wait(timeout=10)
                workers[victim] = _Worker(database_url)
                kills += 1
    finally:
        for worker in workers:
            worker.process.terminate()
        for worker in workers:
            try:
                worker.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.process.kill()
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
