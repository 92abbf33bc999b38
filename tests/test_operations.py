"""The administrator's operations: incidents retried with corrected variables, messages from outside, and the
refusals found while trying them (an escalation to an unknown entity, a business rule task without decision)."""

from __future__ import annotations

import pytest

from engine.bpmn import process_models
from engine.foundation.errors import Conflict, InvalidInput, ModelRejected, NotFound
from engine.storage import audit
from engine.work import incidents, instances, messages
from tests.helpers import complete, deploy, instance, open_items, register_entities, start, the_open_item

REPORT = {"elapsed_days": 4}


def failed_report(db, percent: int = 0) -> int:
    """An instance whose progress report of `percent` broke the next step (a division by zero)."""
    instance_id = start(db, "incident_bad_data", REPORT)
    complete(db, the_open_item(db, instance_id, "report").id, {"percent": percent}, actor="housing.user")
    assert instance(db, instance_id).status == instances.INCIDENT
    return instance_id


# --- incidents ------------------------------------------------------------------------------------------

def test_an_incident_is_listed_with_its_element_and_its_variables(db):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = failed_report(db)
    with db.reading() as session:
        assert [i.id for i in incidents.list_incidents(session)] == [instance_id]
        assert incidents.count_incidents(session) == 1
        variables = incidents.variables(session, instance_id)
        failed = instances.get_instance(session, instance_id)
    assert variables == {"elapsed_days": 4, "percent": 0}
    assert failed.incident_element == "remaining_days" and "division by zero" in failed.incident_message


def test_retry_with_corrected_variables_goes_on_and_the_audit_has_before_and_after(db):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = failed_report(db)
    with db.transaction() as session:
        incidents.retry_with_variables(session, instance_id, {"elapsed_days": 4, "percent": 50}, "admin")
    recovered = instance(db, instance_id)
    assert recovered.status == instances.RUNNING and recovered.incident_message is None
    assert recovered.waiting_messages == "|progress_checked|"
    with db.reading() as session:
        assert instances.load_runtime(recovered).variables()["days_left"] == 4
        events = audit.timeline(session, instances.subject(instance_id))
        assert incidents.count_incidents(session) == 0
    [corrected] = [e for e in events if e.action == "instance.variables_corrected"]
    assert corrected.actor == "admin" and corrected.payload == {
        "element": "remaining_days", "before": {"percent": 0}, "after": {"percent": 50}, "removed": []}
    assert [e.action for e in events][-2:] == ["instance.variables_corrected", "instance.retried"]


def test_a_variable_left_out_is_removed_and_recorded(db):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = start(db, "incident_bad_data", {"elapsed_days": 4, "stale_note": "old"})
    complete(db, the_open_item(db, instance_id, "report").id, {"percent": 0}, actor="housing.user")
    with db.transaction() as session:
        incidents.retry_with_variables(session, instance_id, {"elapsed_days": 4, "percent": 20}, "admin")
    with db.reading() as session:
        [event] = [e for e in audit.timeline(session, instances.subject(instance_id))
                   if e.action == "instance.variables_corrected"]
        variables = instances.load_runtime(instances.get_instance(session, instance_id)).variables()
    assert event.payload["removed"] == ["stale_note"] and "stale_note" not in variables


@pytest.mark.parametrize(("corrected", "message"), [
    ({"elapsed_days": 4, "percent": "fifty"}, "what its step's form accepts"),
    ({"elapsed_days": 4, "percent": 150}, "what its step's form accepts"),
    ({"elapsed_days": 4, "percent": 10, "__class__": 1}, "not allowed"),
    ({"elapsed_days": 4, "percent": 10, "visits": 1}, "not allowed"),
    ([1, 2], "must be an object"),
    ({"elapsed_days": 4, "percent": 0}, "no variable was changed"),
])
def test_corrected_variables_are_validated_and_a_refusal_changes_nothing(db, corrected, message):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = failed_report(db)
    before = instance(db, instance_id)
    with pytest.raises(InvalidInput, match=message), db.transaction() as session:
        incidents.retry_with_variables(session, instance_id, corrected, "admin")
    after = instance(db, instance_id)
    assert (after.status, after.lock_version, after.state) == (instances.INCIDENT, before.lock_version, before.state)


def test_a_retry_that_fails_again_keeps_nothing_and_says_why(db):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = failed_report(db)
    before = instance(db, instance_id)
    with pytest.raises(incidents.StillFailing, match="failed again") as raised, db.transaction() as session:
        incidents.retry_with_variables(session, instance_id, {"elapsed_days": 5, "percent": 0}, "admin")
    assert raised.value.element_id == "remaining_days"
    after = instance(db, instance_id)
    assert (after.lock_version, after.state, after.incident_message) == (
        before.lock_version, before.state, before.incident_message)
    with db.reading() as session:
        assert not [e for e in audit.timeline(session, instances.subject(instance_id))
                    if e.action in ("instance.variables_corrected", "instance.retried")]


def test_only_an_instance_in_incident_is_corrected(db):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = start(db, "incident_bad_data", REPORT)
    with pytest.raises(Conflict, match="not in incident"), db.transaction() as session:
        incidents.retry_with_variables(session, instance_id, {"percent": 5}, "admin")


# --- messages -------------------------------------------------------------------------------------------

def waiting(db, **data) -> int:
    instance_id = start(db, "incident_bad_data", {**REPORT, **data})
    complete(db, the_open_item(db, instance_id, "report").id, {"percent": 50}, actor="housing.user")
    return instance_id


def test_a_message_reaches_the_one_instance_waiting_for_it(db):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = waiting(db)
    with db.transaction() as session:
        delivered = messages.deliver(session, "progress_checked", {"by": "officer"}, "officer")
    assert [i.id for i in delivered] == [instance_id]
    done = instance(db, instance_id)
    assert done.status == instances.COMPLETED and done.waiting_messages == ""
    with db.reading() as session:
        [event] = [e for e in audit.timeline(session, instances.subject(instance_id))
                   if e.action == "message.received"]
    assert event.payload == {"name": "progress_checked", "payload": {"by": "officer"}} and event.actor == "officer"


def test_a_message_nobody_waits_for_is_not_found_and_changes_nothing(db):
    deploy(db, "incident-bad-data.bpmn")
    at_report = start(db, "incident_bad_data", REPORT)  # not yet waiting
    with pytest.raises(NotFound, match="no running instance waits"), db.transaction() as session:
        messages.deliver(session, "progress_checked", {}, "officer")
    with pytest.raises(NotFound), db.transaction() as session:
        messages.deliver(session, "no_such_message", {}, "officer")
    assert instance(db, at_report).status == instances.RUNNING and len(open_items(db, at_report)) == 1


def test_correlation_values_pick_the_instance_among_several(db):
    deploy(db, "incident-bad-data.bpmn")
    housing = waiting(db, entity="housing")
    transport = waiting(db, entity="transport")
    with pytest.raises(Conflict, match="2 instances wait"), db.transaction() as session:
        messages.deliver(session, "progress_checked", {}, "officer")
    with db.transaction() as session:
        delivered = messages.deliver(session, "progress_checked", {"ok": True}, "officer",
                                     correlation={"entity": "transport"})
    assert [i.id for i in delivered] == [transport]
    assert instance(db, transport).status == instances.COMPLETED
    assert instance(db, housing).status == instances.RUNNING
    with pytest.raises(NotFound), db.transaction() as session:
        messages.deliver(session, "progress_checked", {}, "officer", correlation={"entity": "reception"})


def test_a_message_to_all_and_by_business_key(db):
    deploy(db, "incident-bad-data.bpmn")
    with db.transaction() as session:
        keyed = instances.start(session, "incident_bad_data", REPORT, "secretariat", business_key="1447/0042").id
    complete(db, the_open_item(db, keyed, "report").id, {"percent": 50}, actor="housing.user")
    others = [waiting(db), waiting(db)]
    with db.transaction() as session:
        assert [i.id for i in messages.deliver(session, "progress_checked", {}, "officer",
                                               business_key="1447/0042")] == [keyed]
    with db.transaction() as session:
        assert [i.id for i in messages.deliver(session, "progress_checked", {}, "officer", to_all=True)] == others


def test_an_instance_saved_before_the_column_is_still_found(db):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = waiting(db)
    with db.transaction() as session:
        session.execute(instances.ProcessInstance.__table__.update().values(waiting_messages=None))
    with db.transaction() as session:
        assert [i.id for i in messages.deliver(session, "progress_checked", {}, "officer")] == [instance_id]


@pytest.mark.parametrize(("name", "payload", "correlation", "message"), [
    ("", {}, None, "1 to 200 characters"),
    ("a|b", {}, None, "without"),
    ("progress_checked", [1], None, "payload must be an object"),
    ("progress_checked", {"__import__": 1}, None, "not allowed"),
    ("progress_checked", {}, {"class": 1}, "not allowed"),
])
def test_a_bad_message_is_refused(db, name, payload, correlation, message):
    deploy(db, "incident-bad-data.bpmn")
    instance_id = waiting(db)
    with pytest.raises(InvalidInput, match=message), db.transaction() as session:
        messages.deliver(session, name, payload, "officer", correlation=correlation)
    assert instance(db, instance_id).status == instances.RUNNING


# --- refusals found while trying the operations ----------------------------------------------------------

def test_an_escalation_to_an_unknown_entity_is_an_incident(db):
    deploy(db, "escalation-event.bpmn")
    register_entities(db, "housing")
    instance_id = start(db, "escalation_event", {"responsible_entity": "no_such_entity"})
    complete(db, the_open_item(db, instance_id, "report_progress").id, {"percent": 10})
    failed = instance(db, instance_id)
    assert failed.status == instances.INCIDENT
    assert "unknown entity 'no_such_entity'" in failed.incident_message


def test_a_business_rule_task_naming_a_decision_that_is_not_deployed_is_refused(db):
    model = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="ruled" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:businessRuleTask id="decide" name="Deadline by priority">
      <bpmn:extensionElements><spiffworkflow:calledDecisionId>deadline_ladder</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="decide" />
    <bpmn:sequenceFlow id="f2" sourceRef="decide" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""
    with pytest.raises(ModelRejected, match="'deadline_ladder', which is not deployed") as refused, \
            db.transaction() as session:
        process_models.deploy(session, model, "ruled.bpmn", "admin")
    assert refused.value.element_id == "decide"
    with db.reading() as session:
        assert process_models.list_models(session) == []
