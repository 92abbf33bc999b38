"""The statements each hot operation sends to the database, counted through the API on SQLite and on
PostgreSQL: a change that adds one fails here, where it is cheap to see (issue 23). The budgets are today's
counts; lower them when a change saves statements. COMMIT and savepoint statements are counted too, since
each is a round trip.

The lifecycle is the benchmark's (bench/http_bench.py): a launch on the two-step model answering with its
open step, and the two completions answering with the next. The timer worker's hot operation, a batch of
escalations of directives on the shipped standard model, has its own budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from engine.foundation import clock
from engine.work import timers
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, World, open_world

# operation -> statements at most, on (SQLite, PostgreSQL)
# (SQLite counts its BEGIN and BEGIN IMMEDIATE, PostgreSQL's BEGIN is implicit in the driver. On PostgreSQL a
# commit's audit events, kept counts and the chain's head move in one statement, a data-modifying WITH.
# The step figures' context comes from the directive, instance and season the operation holds; the
# directive is read with its instance's lock, the step with the instance's open steps; a launch's link to
# its instance is written with its first projection, and its reference checked in the sequence's UPDATE.)
BUDGETS = {
    "launch": {"sqlite": 19, "postgresql": 14},
    "complete the first step": {"sqlite": 15, "postgresql": 11},
    "complete the last step": {"sqlite": 15, "postgresql": 10},
    "read the inbox": {"sqlite": 5, "postgresql": 3},
}
# A timer batch escalating ten directives on the shipped standard model: per firing, the escalation, its
# notification, the escalation timers' rows (two), the instance and the directive's projection (two);
# per batch, the lock with the directives, their open steps, an entity's check and the commit's writes.
ESCALATION_BATCH = 10
ESCALATION_BUDGET = {"sqlite": 79, "postgresql": 76}


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    with open_world(db, tmp_path, monkeypatch) as built:
        yield built


class Counted:
    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.statements.values())


@contextmanager
def counting(world: World) -> Iterator[Counted]:
    counted = Counted()

    def count(_conn, _cursor, statement: str, *_args) -> None:
        counted.statements[" ".join(statement.split())[:90]] += 1

    def commit(_conn) -> None:
        counted.statements["COMMIT"] += 1

    event.listen(world.db.engine, "before_cursor_execute", count)
    event.listen(world.db.engine, "commit", commit)
    try:
        yield counted
    finally:
        event.remove(world.db.engine, "before_cursor_execute", count)
        event.remove(world.db.engine, "commit", commit)


def _lifecycle(world: World) -> dict[str, Counted]:
    for username in ("secretariat", "housing.user", "officer"):
        world.headers(username)  # tokens issued before counting
    counts = {}
    with counting(world) as counts["launch"]:
        launched = world.create_directive(process_model_key="two_steps")
    [step] = launched["open_steps"]
    with counting(world) as counts["read the inbox"]:
        assert world.call("housing.user", "GET", "/api/v1/tasks").status_code == 200
    with counting(world) as counts["complete the first step"]:
        done = world.call("housing.user", "POST", f"/api/v1/tasks/{step['id']}/complete",
                          json={"data": {"note": "تم"}}).json()
    [step] = done["next_steps"]
    with counting(world) as counts["complete the last step"]:
        last = world.call("officer", "POST", f"/api/v1/tasks/{step['id']}/complete", json={"data": {}}).json()
    assert last["status"] == "completed" and last["next_steps"] == []
    return counts


def test_no_hot_operation_sends_more_statements_than_its_budget(world: World, database_url: str):
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    _lifecycle(world)  # the first lifecycle warms caches (compiled model, tallies' rows)
    counts = _lifecycle(world)
    over = {name: (counted.total, BUDGETS[name][backend], counted.statements.most_common())
            for name, counted in counts.items() if counted.total > BUDGETS[name][backend]}
    report = {name: counted.total for name, counted in counts.items()}
    assert not over, f"{backend}: {report}; over budget: {over}"


def test_a_timer_batch_sends_no_more_statements_than_its_budget(world: World, database_url: str):
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    with world.db.transaction() as session:
        deploy_shipped(session, "directive-standard.bpmn")
    for _ in range(ESCALATION_BATCH):
        world.create_directive(launch=True, process_model_key="directive_standard", deadline="PT2H")
    clock.set_now(NOW + timedelta(hours=2, minutes=1))
    with counting(world) as counted:
        result = timers.run_until_idle(world.db)
    assert result.fired == ESCALATION_BATCH
    assert counted.total <= ESCALATION_BUDGET[backend], (backend, counted.total, counted.statements.most_common())
