"""The escalation board: every supervisor action goes into the running process as a message, and
the escalation row only records that it was dealt with, by whom, how and when."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.calendar import seasons
from engine.directives import directives, supervision
from engine.directives.directives import NewDirective
from engine.foundation import clock
from engine.foundation.errors import Conflict, InvalidInput
from engine.people import entities
from engine.storage import audit
from engine.work import timers
from engine.work.escalations import Escalation
from tests.helpers import deploy, escalations, open_items

T0 = datetime(2026, 5, 20, 6, tzinfo=UTC)
DEADLINE = T0 + timedelta(days=2)


@pytest.fixture
def overdue(db):
    """A standard directive whose deadline passed unacknowledged: one open level-1 escalation."""
    clock.set_now(T0)
    deploy(db, "directive-standard.bpmn")
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
        entities.create_entity(session, "transport", "النقل", "Transport")
        directive = directives.create(session, NewDirective(
            title="استكمال تصاريح المساكن", kind="directive", responsible_entity="housing",
            deadline=DEADLINE.isoformat(), process_model_key="directive_standard"), "secretariat", launch_now=True)
    clock.set_now(DEADLINE + timedelta(minutes=1))
    timers.run_until_idle(db)
    [escalation] = escalations(db, directive.instance_id)
    return db, directive, escalation


def _resolve(db, escalation: Escalation, action: str, **fields) -> Escalation:
    with db.transaction() as session:
        return supervision.resolve(session, escalation.id, action, "supervisor", f"{action}: note", **fields)


def _directive(db, directive) -> directives.Directive:
    with db.reading() as session:
        return directives.get(session, directive.id)


def test_the_deadline_raised_one_open_escalation_on_the_directive(overdue):
    db, directive, escalation = overdue
    assert (escalation.level, escalation.status, escalation.directive_id) == (1, "open", directive.id)
    assert _directive(db, directive).escalation_level == 1


def test_extend_sets_a_new_deadline_and_rearms_the_timers(overdue):
    db, directive, escalation = overdue
    new_deadline = DEADLINE + timedelta(days=3)
    resolved = _resolve(db, escalation, "extend", new_deadline=new_deadline.isoformat())
    assert (resolved.status, resolved.resolved_action, resolved.resolved_by) == ("resolved", "extend", "supervisor")
    current = _directive(db, directive)
    assert current.deadline_at == new_deadline and current.extension_count == 1 and current.escalation_level == 0
    assert {i.due_at for i in open_items(db, directive.instance_id) if i.assignee_entity} == {new_deadline}
    clock.set_now(new_deadline + timedelta(minutes=1))
    timers.run_until_idle(db)
    assert [(e.level, e.status) for e in escalations(db, directive.instance_id)] == [(1, "resolved"), (1, "open")]


def test_reassign_moves_the_open_step_to_the_new_entity(overdue):
    db, directive, escalation = overdue
    _resolve(db, escalation, "reassign", entity="transport")
    assert _directive(db, directive).responsible_entity.code == "transport"
    assert {i.assignee_entity for i in open_items(db, directive.instance_id) if i.assignee_entity} == {"transport"}


def test_escalate_raises_the_next_level(overdue):
    db, directive, escalation = overdue
    _resolve(db, escalation, "escalate")
    assert [(e.level, e.status, e.reason) for e in escalations(db, directive.instance_id)] == [
        (1, "resolved", "unacknowledged"), (2, "open", "manual")]
    assert _directive(db, directive).escalation_level == 2


@pytest.mark.parametrize(("outcome", "status"), [("done", directives.COMPLETED), ("cancelled", directives.CANCELLED)])
def test_close_ends_the_directive(overdue, outcome, status):
    db, directive, escalation = overdue
    _resolve(db, escalation, "close", outcome=outcome)
    assert _directive(db, directive).status == status
    assert open_items(db, directive.instance_id) == []


def test_a_comment_keeps_the_escalation_open_and_is_in_the_timeline(overdue):
    db, directive, escalation = overdue
    _resolve(db, escalation, "comment")
    assert escalations(db, directive.instance_id)[0].status == "open"
    with db.reading() as session:
        actions = [e.action for e in audit.timeline(session, directives.subject(directive.id))]
    assert "escalation.commented" in actions


def test_an_escalation_is_resolved_once(overdue):
    db, _, escalation = overdue
    _resolve(db, escalation, "extend", new_deadline=(DEADLINE + timedelta(days=1)).isoformat())
    with pytest.raises(Conflict, match="already resolved by supervisor"):
        _resolve(db, escalation, "escalate")


@pytest.mark.parametrize(("action", "fields", "message"), [
    ("extend", {"new_deadline": "2020-01-01"}, "already passed"),
    ("reassign", {"entity": "housing"}, "already responsible"),
    ("reassign", {"entity": "atlantis"}, "unknown entity"),
    ("close", {"outcome": "maybe"}, "outcome"),
    ("teleport", {}, "unknown action"),
])
def test_bad_actions_are_refused_and_change_nothing(overdue, action, fields, message):
    db, directive, escalation = overdue
    before = _directive(db, directive)
    with pytest.raises(InvalidInput, match=message):
        _resolve(db, escalation, action, **fields)
    after = _directive(db, directive)
    assert escalations(db, directive.instance_id)[0].status == "open"
    assert (after.deadline_at, after.responsible_entity_id, after.status) == (
        before.deadline_at, before.responsible_entity_id, before.status)


def test_bulk_resolution_reports_each_row(overdue):
    db, directive, escalation = overdue
    with db.transaction() as session:
        outcomes = supervision.resolve_many(session, [escalation.id, 999_999], "escalate", "supervisor", "bulk")
    assert [(o.escalation_id, o.ok) for o in outcomes] == [(escalation.id, True), (999_999, False)]
    assert "no escalation 999999" in outcomes[1].message
    assert _directive(db, directive).escalation_level == 2
