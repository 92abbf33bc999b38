"""Running instances of the shipped models moved to a changed version, then completed; refusals change nothing.

Each instance waits at a different kind of point (a first step with every timer armed, the work step after a
reminder, after the first escalation with the second one armed, verification, an extension under review)
when a new version is deployed: a script task before every end event and renamed steps. It moves with its
open steps, their assignees and due moments, and its timers' due moments; it then runs on the new version to
its end, through the new script task, with the escalations at the moments the old version had set.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.bpmn import process_models
from engine.foundation import clock
from engine.foundation.errors import Conflict, InvalidInput
from engine.work import instance_migration, instances
from tests.conftest import SHIPPED_BPMN_DIR
from tests.helpers import instance, open_items
from tests.model_changes import with_step_before_every_end, with_user_task_as_manual_task
from tests.test_shipped_models import (
    CIRCULAR,
    DEADLINE,
    FILES,
    LEVEL_AFTER_GRACE,
    LEVEL_AT_DEADLINE,
    MINUTE,
    MULTI,
    STANDARD,
    SUPPORTING,
    T0,
    URGENT,
    WORK,
    WORK_STEP,
    at,
    do,
    launch,
    raised,
    request_extension,
    seed_world,
)

POINTS = ["first step", "work step", "after level 1", "verification", "extension review"]


@pytest.fixture
def world(db):
    return seed_world(db)


def deploy_changed(db, key: str, change=with_step_before_every_end) -> int:
    content = change((SHIPPED_BPMN_DIR / FILES[key]).read_bytes())
    with db.transaction() as session:
        deployment = process_models.deploy(session, content, f"{key}-changed.bpmn", "admin")
    assert deployment.created
    return deployment.model.version


def bring_to(db, run, point: str) -> None:
    if point == "work step" or point == "verification":
        do(db, run, "acknowledge", {"note": "received"}, "housing")
        if run.key == MULTI:
            for entity in SUPPORTING[MULTI]:
                do(db, run, "contribute", {"summary": f"{entity} did its part"}, entity)
        at(db, DEADLINE - run.lead + MINUTE)  # the reminder fired
    if point == "verification":
        do(db, run, WORK_STEP[run.key], WORK, "housing")
    if point == "after level 1":
        at(db, DEADLINE + MINUTE)
    if point == "extension review":
        request_extension(db, run)


def finish(db, run) -> None:
    """Whatever is open is done, on time or not, until the instance ends."""
    for _ in range(12):
        items = open_items(db, run.instance_id)
        if not items:
            return
        item = items[0]
        data = {"verify": {"accepted": True}, "review_extension": {"approved": False, "note": "no"},
                WORK_STEP.get(run.key): WORK}.get(item.element_id, {"note": "done", "summary": "done"})
        if item.element_id == "contribute":
            data = {"summary": "did its part"}
        do(db, run, item.element_id, data, item.assignee_entity)
    raise AssertionError("the instance did not end")


def snapshot(db, run):
    stored = instance(db, run.instance_id)
    return stored.next_timer_at, sorted((i.id, i.element_id, i.assignee_entity, i.assignee_role, i.due_at)
                                        for i in open_items(db, run.instance_id))


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("key", [STANDARD, URGENT, MULTI])
def test_an_instance_waiting_anywhere_moves_and_runs_on_the_new_version(world, key, point):
    run = launch(world, key)
    bring_to(world, run, point)
    before = snapshot(world, run)
    escalated_before = raised(world, run)
    version = deploy_changed(world, key)
    with world.reading() as session:
        dry = instance_migration.plan(session, run.instance_id, version)
    assert dry.possible and dry.plan.moves and not dry.plan.removed
    assert any(m.startswith("v2_before_") for m in dry.plan.added)
    assert snapshot(world, run) == before, "a dry run changes nothing"
    with world.transaction() as session:
        instance_migration.migrate(session, run.instance_id, version, "admin")
    moved = instance(world, run.instance_id)
    assert moved.model.version == version and moved.status == instances.RUNNING
    assert snapshot(world, run) == before, "the same steps, assignees, due moments and timers"
    if point in ("first step", "work step", "extension review", "after level 1"):
        # The next level fires when the old version had set it, on the new version.
        moment = DEADLINE + MINUTE if point != "after level 1" else DEADLINE + run.grace + MINUTE
        at(world, moment)
        assert len(raised(world, run)) == len(escalated_before) + 1
        level = LEVEL_AT_DEADLINE[key] if point != "after level 1" else LEVEL_AFTER_GRACE[key]
        assert raised(world, run)[-1][:2] == level
    finish(world, run)
    done = instance(world, run.instance_id)
    assert done.status == instances.COMPLETED, done.incident_message
    with world.reading() as session:
        runtime = instances.load_runtime(instances.get_instance(session, run.instance_id))
    assert any(e.startswith("v2_before_") for e in runtime.element_states().done), "it ran the new version"


def test_a_circular_waiting_for_acknowledgements_moves_and_completes(world):
    run = launch(world, CIRCULAR, ["transport"])
    do(world, run, "acknowledge", {}, "housing")
    before = snapshot(world, run)
    version = deploy_changed(world, CIRCULAR)
    with world.transaction() as session:
        outcomes = instance_migration.migrate_many(session, CIRCULAR, 1, version, "admin")
    assert [(o.instance_id, o.migrated) for o in outcomes] == [(run.instance_id, True)]
    assert snapshot(world, run) == before
    at(world, DEADLINE + MINUTE)
    assert raised(world, run) == [(1, "supervisor", "unacknowledged", "transport")]
    finish(world, run)
    assert instance(world, run.instance_id).status == instances.COMPLETED


def test_a_token_at_an_element_that_changed_kind_is_refused_and_the_instance_is_untouched(world):
    waiting = launch(world, STANDARD)  # at acknowledge
    past = launch(world, STANDARD)
    do(world, past, "acknowledge", {}, "housing")  # at execute: acknowledge is behind it
    version = deploy_changed(world, STANDARD, lambda c: with_user_task_as_manual_task(c, "acknowledge"))
    before = snapshot(world, waiting), instance(world, waiting.instance_id).lock_version
    with world.reading() as session:
        plans = {p.instance_id: p for p in instance_migration.plan_many(session, STANDARD, 1, version)}
    assert not plans[waiting.instance_id].possible
    assert "acknowledge (ready) is a ManualTask in the new version" in plans[waiting.instance_id].reasons[0]
    assert plans[past.instance_id].possible
    with world.transaction() as session, pytest.raises(Conflict, match="cannot move"):
        instance_migration.migrate(session, waiting.instance_id, version, "admin")
    with world.transaction() as session:
        outcomes = instance_migration.migrate_many(session, STANDARD, 1, version, "admin")
    assert [(o.instance_id, o.migrated) for o in outcomes] == [(waiting.instance_id, False), (past.instance_id, True)]
    assert (snapshot(world, waiting), instance(world, waiting.instance_id).lock_version) == before
    assert instance(world, waiting.instance_id).model.version == 1
    assert instance(world, past.instance_id).model.version == version
    with world.reading() as session:
        counts = instance_migration.counts_by_version(session, STANDARD)
    assert counts == {1: {"running": 1, "incident": 0}, version: {"running": 1, "incident": 0}}


def test_a_removed_element_with_a_token_is_refused_never_dropped(world):
    from tests.helpers import deploy, start

    deploy(world, "two-steps.bpmn")
    at_first = start(world, "two_steps", {"responsible_entity": "housing", "deadline": DEADLINE.isoformat()})
    content = (SHIPPED_BPMN_DIR.parent / "tests" / "bpmn" / "two-steps.bpmn").read_text()
    without_first = (content.replace('<bpmn:flowNodeRef>first</bpmn:flowNodeRef>', '')
                     .split('<bpmn:userTask id="first"')[0] + '<bpmn:userTask id="second"'
                     + content.split('<bpmn:userTask id="second"')[1])
    without_first = without_first.replace('targetRef="first"', 'targetRef="second"').replace(
        '<bpmn:sequenceFlow id="f2" sourceRef="first" targetRef="second" />', '').replace(
        '<bpmn:incoming>f2</bpmn:incoming>', '<bpmn:incoming>f1</bpmn:incoming>')
    with world.transaction() as session:
        assert process_models.deploy(session, without_first.encode(), "two.bpmn", "admin").model.version == 2
    with world.reading() as session:
        dry = instance_migration.plan(session, at_first, 2)
    assert dry.reasons == ["first (ready) has no counterpart in the new version"] and dry.plan.removed == ["first"]
    with world.transaction() as session, pytest.raises(Conflict, match="no counterpart"):
        instance_migration.migrate(session, at_first, 2, "admin")
    assert instance(world, at_first).model.version == 1 and len(open_items(world, at_first)) == 1


def test_only_a_newer_version_and_only_running_or_incident_instances(world):
    run = launch(world, STANDARD)
    deploy_changed(world, STANDARD)
    with world.transaction() as session, pytest.raises(InvalidInput, match="newer version"):
        instance_migration.migrate(session, run.instance_id, 1, "admin")
    with world.transaction() as session:
        instances.cancel(session, run.instance_id, "admin")
    with world.reading() as session:
        assert instance_migration.plan(session, run.instance_id, 2).reasons == ["the instance is cancelled"]


def test_a_migration_is_audited_with_both_versions(world):
    from engine.storage import audit

    run = launch(world, STANDARD)
    version = deploy_changed(world, STANDARD)
    clock.set_now(T0 + timedelta(hours=1))
    with world.transaction() as session:
        instance_migration.migrate(session, run.instance_id, version, "admin")
    with world.reading() as session:
        [event] = [e for e in audit.timeline(session, instances.subject(run.instance_id))
                   if e.action == "instance.migrated"]
    assert event.actor == "admin" and event.payload["from_version"] == 1 and event.payload["to_version"] == version
    assert "acknowledge (ready)" in event.payload["moved"]
