"""Directives: register, launch, project the running instance, refuse bad input with nothing stored."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from engine.directives import directives
from engine.directives.directives import Directive, NewDirective
from engine.foundation import clock
from engine.foundation.errors import Conflict, InvalidInput, NotFound
from engine.storage import audit
from engine.storage.audit import AuditEvent
from engine.storage.db import write_row
from engine.work import instances, timers
from tests.helpers import complete, count, deploy, season_1447, the_open_item

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)  # 1447-12-03, in the season


@pytest.fixture
def world(db):
    clock.set_now(NOW)
    deploy(db, "deadline.bpmn")
    season_1447(db, ("housing", "الإسكان", "Housing"), ("transport", "النقل", "Transport"),
                ("civil_defence", "الدفاع المدني", "Civil Defence"))
    return db


def _new(**overrides) -> NewDirective:
    values = {
        "title": "التأكد من مطابقة مساكن الحجاج لاشتراطات السلامة",
        "title_en": "Verify that pilgrim housing meets safety requirements",
        "kind": "decision", "responsible_entity": "housing", "deadline": "PT6H",
        "process_model_key": "deadline", "tags": ["Safety", "housing_permits"],
    }
    values.update(overrides)
    return NewDirective(**values)


def _create(db, launch: bool = False, **overrides) -> Directive:
    with db.transaction() as session:
        return directives.create(session, _new(**overrides), "secretariat", launch_now=launch)


def test_a_draft_gets_the_next_reference_of_its_hijri_year(world):
    first, second = _create(world), _create(world)
    assert (first.reference, second.reference) == ("1447/0001", "1447/0002")
    assert first.status == directives.DRAFT and first.deadline_at == NOW + timedelta(hours=6)
    assert [t.tag for t in first.tags] == ["safety", "housing_permits"]
    with world.reading() as session:
        [event] = audit.timeline(session, directives.subject(first.id))
    assert event.action == "directive.created" and event.payload["responsible"] == "housing"


def test_launch_runs_the_process_and_projects_its_steps(world):
    directive = _create(world, launch=True, deadline="1447-12-05 هـ")
    assert directive.status == directives.ACTIVE and directive.instance_id is not None
    assert directive.deadline_at == datetime(2026, 5, 22, 20, 59, tzinfo=UTC)
    assert directive.current_steps == ["acknowledge"]
    assert directive.current_due_at == directive.deadline_at
    with world.transaction() as session, pytest.raises(Conflict, match="launched already"):
        directives.launch(session, directive.id, "secretariat")


def test_the_deadline_acts_and_the_directive_shows_it(world):
    directive = _create(world, launch=True, deadline="PT6H")
    clock.set_now(NOW + timedelta(hours=6, minutes=1))
    timers.run_until_idle(world)
    with world.reading() as session:
        current = directives.get(session, directive.id)
        assert current.escalation_level == 1 and current.current_steps == ["supervisor_review"]
        assert directives.overdue(current) is True  # past its deadline (the supervisor's review has no due moment)
        admin = SimpleNamespace(username="admin", role="admin", entity_id=None, active=True)
        late, total = directives.search(session, admin, directives.DirectiveFilters(overdue=True))
        assert ([d.id for d in late], total) == ([directive.id], 1)
        assert directives.search(session, admin, directives.DirectiveFilters(overdue=False)) == ([], 0)
        [escalation] = session.scalars(select(directives.Escalation)).all()
        assert escalation.directive_id == directive.id


def test_the_projection_is_written_from_a_fresh_copy_of_the_directive(world):
    """A request loads its directive before it takes the instance's lock (for its access check); another
    request may change the projection meanwhile. Projecting must then still write what it computes, even
    when that equals the stale copy's value (found by tests/test_lost_updates.py under 50 clients)."""
    if world.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no other write can commit while this transaction reads")
    directive = _create(world, launch=True, deadline="PT6H")
    with world.transaction() as session:
        stale = directives.get(session, directive.id)
        assert stale.current_steps == ["acknowledge"]
        with world.transaction() as other:  # a concurrent writer's projection, committed meanwhile
            other.execute(update(Directive).where(Directive.id == directive.id).values(current_steps=["gone"]))
        instance = instances.lock(session, stale.instance_id)
        directives._sync(session, instance, None)
    with world.reading() as session:
        assert directives.get(session, directive.id).current_steps == ["acknowledge"]


def test_a_lock_that_waited_for_a_writer_does_not_hold_the_directive_as_its_snapshot_saw_it(world):
    """The lock of an instance reads its directive in the same statement. On PostgreSQL, a lock that waits
    for another writer gets the instance as that writer left it but the directive as the statement's
    snapshot saw it, before that writer committed (found by tests/test_lost_updates.py): such a copy is
    not held, and what the directive's layer reads next is current."""
    if world.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: a lock never waits inside a statement")
    directive = _create(world, launch=True, deadline="PT6H")
    later = directive.deadline_at + timedelta(days=1)
    with world.transaction() as writer:
        held = instances.lock(writer, directive.instance_id)
        write_row(writer, held, {"updated_at": clock.now()}, version="lock_version")
        writer.execute(update(Directive).where(Directive.id == directive.id).values(deadline_at=later))
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_locked_directive_deadline, world, directive.instance_id)
            time.sleep(0.5)  # the other lock is waiting for this transaction
            assert not waiting.done()
            writer.commit()
            assert waiting.result(timeout=10) == later


def _locked_directive_deadline(world, instance_id: int) -> datetime:
    with world.transaction() as session:
        instances.lock(session, instance_id)
        return directives.of_instance(session, instance_id).deadline_at


def test_completion_closes_the_directive_on_time(world):
    directive = _create(world, launch=True)
    complete(world, the_open_item(world, directive.instance_id, "acknowledge").id, actor="housing.user")
    with world.reading() as session:
        done = directives.get(session, directive.id)
        assert done.status == directives.COMPLETED and done.completed_on_time is True
        assert done.current_steps == [] and done.current_due_at is None


def test_cancelling_stops_the_process_and_refuses_later_steps(world):
    directive = _create(world, launch=True)
    item = the_open_item(world, directive.instance_id, "acknowledge")
    with world.transaction() as session:
        directives.cancel(session, directive.id, "secretariat", "duplicate of 1447/0007")
    with world.reading() as session:
        assert directives.get(session, directive.id).status == directives.CANCELLED
        assert instances.get_instance(session, directive.instance_id).status == instances.CANCELLED
    with pytest.raises(Conflict):
        complete(world, item.id)
    with world.transaction() as session, pytest.raises(Conflict, match="already cancelled"):
        directives.cancel(session, directive.id, "secretariat", "again")


@pytest.mark.parametrize(("overrides", "error", "message"), [
    ({"responsible_entity": "ministry_of_magic"}, InvalidInput, "unknown entity: ministry_of_magic"),
    ({"supporting_entities": ["transport", "nowhere"]}, InvalidInput, "unknown entity: nowhere"),
    ({"supporting_entities": ["housing"]}, InvalidInput, "differ from the responsible"),
    ({"deadline": "2026-05-19T10:00:00+03:00"}, InvalidInput, "already passed"),
    ({"deadline": "1501-01-01 هـ"}, InvalidInput, "1343-1500"),
    ({"deadline": "next week"}, InvalidInput, "not a deadline"),
    ({"kind": "memo"}, InvalidInput, "unknown kind"),
    ({"priority": "critical"}, InvalidInput, "unknown priority"),
    ({"title": "  "}, InvalidInput, "title"),
    ({"tags": ["no spaces allowed!"]}, InvalidInput, "tag"),
    ({"process_model_key": "missing_model"}, NotFound, "missing_model"),
    ({"reference": "bad reference with spaces"}, InvalidInput, "reference"),
])
def test_bad_input_is_refused_and_nothing_is_stored(world, overrides, error, message):
    events_before = count(world, AuditEvent)  # the world's setup records its own events
    with pytest.raises(error, match=message):
        _create(world, launch=True, **overrides)
    assert count(world, Directive) == 0
    assert count(world, AuditEvent) == events_before


def test_a_duplicate_reference_is_a_conflict(world):
    _create(world, reference="1447/ق-12")
    with pytest.raises(Conflict, match="taken"):
        _create(world, reference="1447/ق-12")
    assert count(world, Directive) == 1


def test_generated_references_skip_ones_taken_by_hand(world):
    _create(world, reference="1447/0001")
    assert _create(world).reference == "1447/0002"


@pytest.mark.parametrize(("last_number", "taken", "expected"), [
    (8, "1447/0009", "1447/0010"), (98, "1447/0099", "1447/0100"), (998, "1447/0999", "1447/1000"),
    (9998, "1447/9999", "1447/10000"), (9999, "1447/10000", "1447/10001"),
])
def test_the_database_writes_a_number_as_the_reference_it_gives(world, last_number, taken, expected):
    """The sequence's UPDATE says whether the next number's reference is taken: the database pads it to
    four digits as Python does, or the one taken by hand would be given again."""
    _create(world)  # the season's year has its sequence row from here
    with world.transaction() as session:
        session.execute(update(directives.DirectiveSequence).values(last_number=last_number))
    _create(world, reference=taken)
    assert _create(world).reference == expected


def test_a_failed_launch_leaves_the_draft_as_it_was(world):
    directive = _create(world, deadline="PT1H")
    clock.set_now(NOW + timedelta(hours=2))
    with world.transaction() as session, pytest.raises(InvalidInput, match="has passed"):
        directives.launch(session, directive.id, "secretariat")
    with world.reading() as session:
        again = directives.get(session, directive.id)
        assert again.status == directives.DRAFT and again.instance_id is None
        assert session.scalar(select(func.count()).select_from(instances.ProcessInstance)) == 0


def test_the_audit_chain_holds_after_a_directive_lifecycle(world):
    directive = _create(world, launch=True)
    complete(world, the_open_item(world, directive.instance_id, "acknowledge").id)
    with world.reading() as session:
        result = audit.verify(session)
        actions = [e.action for e in audit.timeline(session, directives.subject(directive.id),
                                                    instances.subject(directive.instance_id))]
    assert result.ok, str(result)
    assert actions == ["directive.created", "instance.started", "directive.launched", "step.completed",
                       "instance.completed"]
