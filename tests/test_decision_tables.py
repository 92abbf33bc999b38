"""Decision tables (DMN): validated and versioned like models, checked at a model's deploy, evaluated through
the restricted evaluator, and bound per instance: a new version applies to instances started after it."""

from __future__ import annotations

import pytest

from engine.bpmn import decision_tables, process_models
from engine.foundation.errors import ModelRejected
from engine.storage import audit
from engine.work import instance_migration, instances
from tests.conftest import read_model
from tests.helpers import complete, instance, the_open_item

LADDER = read_model("ladder-by-days.dmn")


def deploy_ladder(db, content: bytes = LADDER, name: str = "ladder-by-days.dmn") -> decision_tables.Deployment:
    with db.transaction() as session:
        return decision_tables.deploy(session, content, name, "admin")


def deploy_ruled(db) -> process_models.ProcessModel:
    with db.transaction() as session:
        return process_models.deploy(session, read_model("ruled.bpmn"), "ruled.bpmn", "admin").model


def ladder_of(db, data) -> tuple[str, str, dict]:
    with db.transaction() as session:
        started = instances.start(session, "ruled", data, "secretariat")
        variables = instances.load_runtime(started).variables()
        return variables.get("reminder_lead"), variables.get("grace"), started.decision_versions


def test_a_decision_table_deploys_once_and_a_change_is_a_new_version(db):
    first = deploy_ladder(db)
    assert first.created and first.decision.version == 1 and first.decision.key == "ladder_by_days"
    assert first.decision.rule_count == 4
    assert not deploy_ladder(db).created
    changed = deploy_ladder(db, LADDER.replace(b'"PT2H"</text></outputEntry>\n        <outputEntry id="r1_grace">',
                                               b'"PT1H"</text></outputEntry>\n        <outputEntry id="r1_grace">'))
    assert changed.created and changed.decision.version == 2
    with db.reading() as session:
        assert [d.version for d in decision_tables.list_versions(session, "ladder_by_days")] == [1, 2]
        assert [e.action for e in audit.timeline(session, decision_tables.subject("ladder_by_days"))] == [
            "decision.deployed", "decision.deployed"]
        view = decision_tables.table_view(decision_tables.get_decision(session, "ladder_by_days"))
    assert view.hit_policy == "FIRST" and view.inputs == ["Priority", "Kind", "Days to the deadline"]
    assert view.rules[0] == (['"urgent"', "-", "-"], ['"PT1H"', '"PT2H"'])


@pytest.mark.parametrize(("content", "message"), [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><definitions/>', "DTDs"),
    (b"<definitions", "malformed XML"),
    (b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>', "not a DMN file"),
    (LADDER.replace(b"<text>priority</text>", b"<text>__import__('os')</text>"), "not allowed|refused|unknown"),
    (LADDER.replace(b'<text>"PT6H"</text>', b"<text>open('/etc/passwd')</text>"), "not allowed|refused|unknown"),
    (LADDER.replace(b'hitPolicy="FIRST"', b'hitPolicy="RULE ORDER"'), "hit policy|not valid DMN"),
    (LADDER.replace(b"</decision>", b'</decision><decision id="another" name="x"><decisionTable id="t2">'
                                    b'<output id="o2" name="x" /></decisionTable></decision>'), "exactly one decision"),
    (LADDER + b" " * 2_000_000, "more than the limit"),
])
def test_a_bad_decision_table_is_refused_and_nothing_is_stored(db, content, message):
    with pytest.raises(ModelRejected, match=message), db.transaction() as session:
        decision_tables.deploy(session, content, "bad.dmn", "admin")
    with db.reading() as session:
        assert decision_tables.list_decisions(session) == []


def test_a_model_naming_a_decision_deploys_only_once_the_decision_is_deployed(db):
    with pytest.raises(ModelRejected, match="'ladder_by_days', which is not deployed"), \
            db.transaction() as session:
        process_models.deploy(session, read_model("ruled.bpmn"), "ruled.bpmn", "admin")
    deploy_ladder(db)
    assert deploy_ruled(db).decision_versions == {"ladder_by_days": 1}


@pytest.mark.parametrize(("data", "expected"), [
    ({"priority": "urgent", "kind": "decision", "days_to_deadline": 3}, ("PT2H", "PT2H")),
    ({"priority": "normal", "kind": "circular", "days_to_deadline": 1}, ("PT6H", "PT12H")),
    ({"priority": "high", "kind": "directive", "days_to_deadline": 10}, ("P2D", "P1D")),
    ({"priority": "normal", "kind": "directive", "days_to_deadline": 3}, ("P1D", "P1D")),
])
def test_the_table_decides_by_its_rules(db, data, expected):
    deploy_ladder(db)
    deploy_ruled(db)
    assert ladder_of(db, data)[:2] == expected


def test_a_new_version_of_the_rule_applies_to_new_instances_while_running_ones_keep_theirs(db):
    deploy_ladder(db)
    deploy_ruled(db)
    urgent = {"priority": "urgent", "kind": "decision", "days_to_deadline": 3}
    with db.transaction() as session:
        before = instances.start(session, "ruled", urgent, "secretariat").id
    deploy_ladder(db, LADDER.replace(b'<text>"PT2H"</text></outputEntry>\n        <outputEntry id="r1_grace">',
                                     b'<text>"PT1H"</text></outputEntry>\n        <outputEntry id="r1_grace">'))
    lead, grace, versions = ladder_of(db, urgent)
    assert (lead, grace, versions) == ("PT1H", "PT2H", {"ladder_by_days": 2}), "the model was not redeployed"
    assert instance(db, before).decision_versions == {"ladder_by_days": 1}
    process_models._compiled.clear()  # another node: the running instance is rebuilt with its own version
    with db.reading() as session:
        kept = instances.load_runtime(instances.get_instance(session, before)).variables()
    assert kept["reminder_lead"] == "PT2H"
    complete(db, the_open_item(db, before, "acknowledge").id, {}, actor="housing.user")
    assert instance(db, before).status == instances.COMPLETED


def test_a_rule_failing_at_run_time_is_an_incident(db):
    deploy_ladder(db)
    deploy_ruled(db)
    with db.transaction() as session:
        failed = instances.start(session, "ruled", {"priority": "normal", "kind": "decision"}, "secretariat")
    assert failed.status == instances.INCIDENT and failed.incident_element == "decide_ladder"


def test_a_migrated_instance_takes_the_decision_versions_of_its_new_model_version(db):
    deploy_ladder(db)
    deploy_ruled(db)
    with db.transaction() as session:
        running = instances.start(session, "ruled", {"priority": "urgent", "kind": "decision",
                                                     "days_to_deadline": 3}, "secretariat").id
    deploy_ladder(db, LADDER.replace(b'"P1D"</text></outputEntry>\n      </rule>\n    </decisionTable>',
                                     b'"P3D"</text></outputEntry>\n      </rule>\n    </decisionTable>'))
    with db.transaction() as session:
        changed = read_model("ruled.bpmn").replace(b'name="Acknowledge"', b'name="Acknowledge receipt"')
        assert process_models.deploy(session, changed, "ruled.bpmn", "admin").model.decision_versions == {
            "ladder_by_days": 2}
        instance_migration.migrate(session, running, 2, "admin")
    assert instance(db, running).decision_versions == {"ladder_by_days": 2}
    complete(db, the_open_item(db, running, "acknowledge").id, {}, actor="housing.user")
    assert instance(db, running).status == instances.COMPLETED


def test_the_shipped_standard_model_takes_its_escalation_ladder_from_the_shipped_table(db):
    """The unit moves the reminder of normal directives to six hours before the deadline by deploying a changed
    table: a directive launched after it is reminded then; one launched before is reminded a day before."""
    from datetime import UTC, date, datetime, timedelta

    from engine.calendar import seasons
    from engine.directives import directives
    from engine.directives.directives import NewDirective
    from engine.foundation import clock
    from engine.people import entities
    from engine.work import timers as timer_worker
    from tests.conftest import SHIPPED_BPMN_DIR, deploy_shipped
    from tests.helpers import notifications

    start = datetime(2026, 5, 20, 6, tzinfo=UTC)
    clock.set_now(start)
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
        model = deploy_shipped(session, "directive-standard.bpmn").model
    assert model.decision_versions == {"escalation_ladder": 1}

    def launch() -> int:
        with db.transaction() as session:
            return directives.create(session, NewDirective(
                title="تهيئة مراكز الاستقبال", kind="directive", responsible_entity="housing",
                deadline=start + timedelta(days=2), process_model_key="directive_standard"),
                "secretariat", launch_now=True).instance_id

    before = launch()
    shipped = (SHIPPED_BPMN_DIR / "escalation-ladder.dmn").read_bytes()
    changed = shipped.replace(b'<outputEntry id="ladder_normal_lead"><text>"P1D"</text>',
                              b'<outputEntry id="ladder_normal_lead"><text>"PT6H"</text>')
    assert changed != shipped
    assert deploy_ladder(db, changed, name="escalation-ladder.dmn").decision.version == 2
    after = launch()
    assert instance(db, after).decision_versions == {"escalation_ladder": 2}
    deadline = start + timedelta(days=2)
    clock.set_now(deadline - timedelta(days=1) + timedelta(minutes=1))
    timer_worker.run_until_idle(db)
    assert [n.template for n in notifications(db, before)] == ["reminder"]
    assert notifications(db, after) == []
    clock.set_now(deadline - timedelta(hours=6) + timedelta(minutes=1))
    timer_worker.run_until_idle(db)
    assert [n.template for n in notifications(db, after)] == ["reminder"]
    with db.reading() as session:
        assert len(process_models.list_versions(session, "directive_standard")) == 1
