"""Instances: start to end, forms, messages, escalation events, incidents, loop caps, cancellation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.bpmn import bpmn_runtime, process_models
from engine.foundation import clock
from engine.foundation.errors import Conflict, ExpressionError, InvalidInput
from engine.foundation.settings import get_settings
from engine.work import instances
from engine.work.instances import ProcessInstance
from engine.work.notifications import Notification
from engine.work.work_items import WorkItem
from tests.helpers import (
    complete,
    count,
    deploy,
    escalations,
    instance,
    notifications,
    open_items,
    register_entities,
    start,
    the_open_item,
)

HOUSING = {"responsible_entity": "housing", "deadline": "2026-06-01T12:00:00+00:00"}


def test_start_runs_to_the_first_user_task_and_projects_it(db):
    deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", HOUSING)
    item = the_open_item(db, instance_id, "first")
    assert item.assignee_entity == "housing"
    assert item.assignee_role == "entity_user"  # from the lane
    assert item.due_at == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert item.form_schema["required"] == ["note"]
    stored = instance(db, instance_id)
    assert stored.status == instances.RUNNING
    assert "spec" not in stored.state and "subprocess_specs" not in stored.state


def test_start_to_end(db):
    deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", HOUSING)
    complete(db, the_open_item(db, instance_id, "first").id, {"note": "acknowledged"}, actor="housing.user")
    second = the_open_item(db, instance_id, "second")
    assert second.assignee_role == "follow_up_officer"
    complete(db, second.id, {}, actor="officer")
    finished = instance(db, instance_id)
    assert finished.status == instances.COMPLETED and finished.ended_at is not None
    assert open_items(db, instance_id) == []
    with db.reading() as session:
        done = {w.element_id: w for w in session.query(WorkItem).filter_by(instance_id=instance_id)}
    assert done["first"].completed_by == "housing.user"
    assert done["first"].completion_data == {"note": "acknowledged"}


def test_form_data_is_validated_against_the_schema_and_refused_whole(db):
    deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", HOUSING)
    item = the_open_item(db, instance_id, "first")
    version = instance(db, instance_id).lock_version
    with pytest.raises(InvalidInput) as refused:
        complete(db, item.id, {"note": "x" * 501})
    assert refused.value.details[0]["field"] == "note"
    with pytest.raises(InvalidInput, match=r"does not match"):
        complete(db, item.id, {})
    with pytest.raises(InvalidInput, match="not allowed"):
        complete(db, item.id, {"note": "ok", "__class__": 1})
    assert the_open_item(db, instance_id, "first").status == "open"
    assert instance(db, instance_id).lock_version == version


def test_completing_a_finished_step_is_a_conflict(db):
    deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", HOUSING)
    item = the_open_item(db, instance_id, "first")
    complete(db, item.id, {"note": "first"}, actor="a")
    with pytest.raises(Conflict, match="already completed by a"):
        complete(db, item.id, {"note": "second"}, actor="b")


def test_process_data_that_shadows_the_library_is_refused(db):
    deploy(db, "two-steps.bpmn")
    with pytest.raises(InvalidInput, match="now"):
        start(db, "two_steps", {"now": "2020-01-01", "responsible_entity": "housing"})
    assert count(db, ProcessInstance) == 0


def test_a_message_event_is_delivered_with_its_payload(db):
    deploy(db, "message.bpmn")
    instance_id = start(db, "message_wait")
    assert open_items(db, instance_id) == []
    with db.transaction() as session:
        instances.send_message(session, instance_id, "approval",
                               {"approved": True, "new_deadline": "2026-06-03T09:00:00Z"}, "supervisor")
    item = the_open_item(db, instance_id, "proceed")
    assert item.due_at == datetime(2026, 6, 3, 9, tzinfo=UTC)
    with pytest.raises(Conflict, match="not waiting for the message 'approval'"), db.transaction() as session:
        instances.send_message(session, instance_id, "approval", {"approved": True}, "supervisor")


def test_a_rejecting_message_takes_the_default_flow(db):
    deploy(db, "message.bpmn")
    instance_id = start(db, "message_wait")
    with db.transaction() as session:
        instances.send_message(session, instance_id, "approval", {"approved": False}, "supervisor")
    assert instance(db, instance_id).status == instances.COMPLETED


def test_an_escalation_event_raised_in_a_subprocess_escalates_once(db):
    deploy(db, "escalation-event.bpmn")
    register_entities(db, "transport")
    behind = start(db, "escalation_event", {"responsible_entity": "transport"})
    complete(db, the_open_item(db, behind, "report_progress").id, {"percent": 20})
    [raised] = escalations(db, behind)
    assert (raised.level, raised.target_role, raised.entity, raised.reason) == (2, "leadership", "transport", "overdue")
    assert instance(db, behind).status == instances.COMPLETED

    on_plan = start(db, "escalation_event", {"responsible_entity": "transport"})
    complete(db, the_open_item(db, on_plan, "report_progress").id, {"percent": 80})
    assert escalations(db, on_plan) == []


def test_a_failing_step_becomes_an_incident_with_nothing_half_written(db):
    deploy(db, "incident.bpmn")
    clock.set_now(datetime(2026, 6, 1, 8, tzinfo=UTC))
    instance_id = start(db, "incident", {"go_live": "2026-06-01T10:00:00Z"})
    submit = the_open_item(db, instance_id, "submit")
    complete(db, submit.id, {}, actor="entity.user")

    failed = instance(db, instance_id)
    assert failed.status == instances.INCIDENT
    assert failed.incident_element == "compute"
    assert "ZeroDivisionError" in failed.incident_message
    assert failed.next_timer_at is None
    # The user's step is kept; the notification of the failed run is not.
    assert open_items(db, instance_id) == []
    assert notifications(db, instance_id) == []
    with pytest.raises(Conflict, match="incident"), db.transaction() as session:
        instances.send_message(session, instance_id, "anything", {}, "x")

    with db.transaction() as session:
        still = instances.retry(session, instance_id, "admin")
    assert still.status == instances.INCIDENT and notifications(db, instance_id) == []

    clock.set_now(datetime(2026, 6, 1, 11, tzinfo=UTC))
    with db.transaction() as session:
        instances.retry(session, instance_id, "admin")
    recovered = instance(db, instance_id)
    assert recovered.status == instances.RUNNING and recovered.incident_message is None
    assert [n.template for n in notifications(db, instance_id)] == ["submitted"]
    assert the_open_item(db, instance_id, "verify").assignee_role == "follow_up_officer"
    with pytest.raises(Conflict, match="not in incident"), db.transaction() as session:
        instances.retry(session, instance_id, "admin")


def test_the_model_routes_past_its_rework_cap_to_a_supervisor(db):
    deploy(db, "rework.bpmn")
    instance_id = start(db, "rework", {"max_returns": 3})
    for _ in range(3):
        complete(db, the_open_item(db, instance_id, "execute").id)
        complete(db, the_open_item(db, instance_id, "verify").id, {"accepted": False})
    assert the_open_item(db, instance_id, "supervisor_decides").assignee_role == "supervisor"


def test_the_engine_caps_loops_with_an_incident_never_a_recursion_error(db, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_loop_visits", 6)
    deploy(db, "rework.bpmn")
    instance_id = start(db, "rework", {"max_returns": 1000})
    for _ in range(6):
        complete(db, the_open_item(db, instance_id, "execute").id)
        if instance(db, instance_id).status == instances.INCIDENT:
            break
        complete(db, the_open_item(db, instance_id, "verify").id, {"accepted": False})
    capped = instance(db, instance_id)
    assert capped.status == instances.INCIDENT
    assert "more than the cap of 6" in capped.incident_message


def test_cancel_withdraws_open_steps_and_refuses_later_work(db):
    deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", HOUSING)
    item = the_open_item(db, instance_id, "first")
    with db.transaction() as session:
        instances.cancel(session, instance_id, "secretariat")
    assert instance(db, instance_id).status == instances.CANCELLED
    assert open_items(db, instance_id) == []
    with pytest.raises(Conflict, match="withdrawn"):
        complete(db, item.id, {"note": "too late"})
    with pytest.raises(Conflict, match="already cancelled"), db.transaction() as session:
        instances.cancel(session, instance_id, "secretariat")


def test_loaded_workflows_always_carry_the_restricted_evaluator(db):
    [model] = deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", HOUSING)
    stored = instance(db, instance_id)
    runtime = bpmn_runtime.Runtime.load(process_models.compiled_model(model), stored.state, None, 60, 2000)
    task = runtime.workflow.get_tasks()[0]
    with pytest.raises(bpmn_runtime.WorkflowFailure, match="not allowed"):
        runtime.workflow.script_engine.evaluate(task, "__import__('os').getcwd()")
    with pytest.raises(bpmn_runtime.WorkflowFailure, match="not allowed"):
        runtime.workflow.script_engine.execute(task, "x = ().__class__")


def test_an_escalation_is_keyed_by_its_firing_and_announced_to_its_target(db):
    deploy(db, "escalation-event.bpmn")
    register_entities(db, "transport")
    instance_id = start(db, "escalation_event", {"responsible_entity": "transport"})
    complete(db, the_open_item(db, instance_id, "report_progress").id, {"percent": 10})
    assert [e.source_key for e in escalations(db, instance_id)] == ["escalate_behind_plan#1"]
    [announced] = notifications(db, instance_id)
    assert (announced.template, announced.recipient_role, announced.payload["level"]) == ("escalation", "leadership", 2)
    assert count(db, Notification) == 1


def test_expression_errors_name_the_expression():
    with pytest.raises(ExpressionError, match="1 / 0"):
        from engine.bpmn import expressions

        expressions.evaluate("1 / 0", {})


def test_a_step_that_cannot_be_projected_fails_its_run_and_changes_no_step(db):
    """The boundary timer interrupts `report` and opens `explain`, whose due moment divides by zero: the
    firing is an incident, and `report` is still open, not withdrawn by the run that failed."""
    from engine.work import timers

    deploy(db, "due-fails.bpmn")
    clock.set_now(datetime(2026, 6, 1, 8, tzinfo=UTC))
    instance_id = start(db, "due_fails", {**HOUSING, "grace_days": 2})
    report = the_open_item(db, instance_id, "report")

    clock.set_now(datetime(2026, 6, 2, 8, tzinfo=UTC))
    assert timers.run_until_idle(db).incidents == [instance_id]

    failed = instance(db, instance_id)
    assert failed.status == instances.INCIDENT and failed.incident_element == "explain"
    assert "division by zero" in failed.incident_message
    assert [(i.id, i.element_id) for i in open_items(db, instance_id)] == [(report.id, "report")]
    assert count(db, WorkItem) == 1


def test_an_instance_whose_first_run_fails_keeps_its_start_to_run_again(db):
    """The first run notifies, then fails: the notification goes with the failed run, and the instance
    keeps its clean point (started, not run), from which a retry runs it once it can."""
    deploy(db, "incident-at-start.bpmn")
    clock.set_now(datetime(2026, 6, 1, 8, tzinfo=UTC))
    instance_id = start(db, "incident_at_start", {"go_live": "2026-06-01T10:00:00Z"})

    failed = instance(db, instance_id)
    assert failed.status == instances.INCIDENT and failed.incident_element == "compute"
    assert failed.state["data"] == {} and failed.state["tasks"]  # the workflow as started
    assert open_items(db, instance_id) == [] and notifications(db, instance_id) == []

    clock.set_now(datetime(2026, 6, 1, 11, tzinfo=UTC))
    with db.transaction() as session:
        instances.retry(session, instance_id, "admin")
    assert instance(db, instance_id).status == instances.RUNNING
    assert [n.template for n in notifications(db, instance_id)] == ["submitted"]
    assert the_open_item(db, instance_id, "verify").assignee_role == "follow_up_officer"


def test_an_incident_beside_a_subprocess_keeps_the_subprocess(db):
    """The clean part of a failed run is applied to the state as loaded: loading it a first time must not
    have taken anything out of it (SpiffWorkflow's restore pops the sub-processes from what it is given)."""
    deploy(db, "incident-beside-subprocess.bpmn")
    clock.set_now(datetime(2026, 6, 1, 8, tzinfo=UTC))
    instance_id = start(db, "incident_beside_subprocess", {"go_live": "2026-06-01T10:00:00Z"})
    complete(db, the_open_item(db, instance_id, "submit").id, {}, actor="entity.user")

    failed = instance(db, instance_id)
    assert failed.status == instances.INCIDENT and failed.incident_element == "compute"
    assert [item.element_id for item in open_items(db, instance_id)] == ["watch_step"]
    assert len(failed.state["subprocesses"]) == 1

    clock.set_now(datetime(2026, 6, 1, 11, tzinfo=UTC))
    with db.transaction() as session:
        instances.retry(session, instance_id, "admin")
    complete(db, the_open_item(db, instance_id, "watch_step").id, {}, actor="officer")
    assert instance(db, instance_id).status == instances.COMPLETED
