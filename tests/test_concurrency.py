"""One writer per instance: of ten concurrent completions of one step, exactly one wins."""

from __future__ import annotations

import threading

from engine.foundation.errors import Conflict
from engine.work import instances
from tests.helpers import deploy, instance, start, the_open_item

HOUSING = {"responsible_entity": "housing", "deadline": "2026-06-01T12:00:00+00:00"}


def test_ten_concurrent_completions_of_one_step_give_exactly_one_success(db):
    deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", HOUSING)
    item_id = the_open_item(db, instance_id, "first").id
    version_before = instance(db, instance_id).lock_version
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        barrier.wait()
        try:
            with db.transaction() as session:
                instances.complete_task(session, item_id, {"note": f"by {n}"}, f"user{n}")
            result = "ok"
        except Conflict as exc:
            result = f"conflict: {exc}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes.count("ok") == 1, outcomes
    assert len(outcomes) == 10
    assert all("already completed" in o for o in outcomes if o != "ok"), outcomes
    assert [i.element_id for i in [the_open_item(db, instance_id, "second")]] == ["second"]
    assert instance(db, instance_id).lock_version == version_before + 1
