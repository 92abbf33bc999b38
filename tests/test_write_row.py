"""`engine.storage.db.write_row`: a loaded row written without the unit of work stays true to the database —
after a savepoint that rolls it back, after the transaction, and against a concurrent writer."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from engine.people import entities
from engine.people.entities import Entity
from engine.storage.db import write_row
from engine.work.instances import ProcessInstance
from tests.helpers import deploy, start


def _entity(db) -> int:
    with db.transaction() as session:
        return entities.create_entity(session, "housing", "الإسكان", "Housing").id


def _stored(db, entity_id: int) -> Entity:
    with db.reading() as session:
        return session.get(Entity, entity_id)


def test_the_object_shows_what_was_written_and_the_row_holds_it(db):
    entity_id = _entity(db)
    with db.transaction() as session:
        entity = session.get(Entity, entity_id)
        write_row(session, entity, {"name_en": "Housing and camps"})
        assert entity.name_en == "Housing and camps"
        assert not session.dirty  # written, not pending
    assert _stored(db, entity_id).name_en == "Housing and camps"


def test_a_savepoint_rolled_back_takes_the_write_back_on_the_object_too(db):
    entity_id = _entity(db)
    with db.transaction() as session:
        entity = session.get(Entity, entity_id)
        write_row(session, entity, {"name_en": "Before the savepoint"})
        savepoint = session.begin_nested()
        write_row(session, entity, {"name_en": "Inside the savepoint"})
        savepoint.rollback()
        assert entity.name_en == "Before the savepoint"  # expired and read again, not the rolled-back value
    assert _stored(db, entity_id).name_en == "Before the savepoint"


def test_pending_changes_are_flushed_before_the_write(db):
    entity_id = _entity(db)
    with db.transaction() as session:
        entity = session.get(Entity, entity_id)
        entity.name_ar = "الإسكان والمخيمات"  # through the unit of work, not yet flushed
        write_row(session, entity, {"name_en": "Housing and camps"})
    stored = _stored(db, entity_id)
    assert (stored.name_ar, stored.name_en) == ("الإسكان والمخيمات", "Housing and camps")


def test_a_versioned_write_refuses_a_row_that_moved_on(db):
    deploy(db, "two-steps.bpmn")
    instance_id = start(db, "two_steps", {"responsible_entity": "housing",
                                          "deadline": "2030-01-01T00:00:00+00:00"})
    with db.transaction() as session:
        stale = session.scalar(select(ProcessInstance).where(ProcessInstance.id == instance_id))
        seen = stale.lock_version
        session.connection().execute(  # the row moves on behind the loaded object (as another writer would)
            update(ProcessInstance.__table__).where(ProcessInstance.id == instance_id)
            .values(business_status="moved on", lock_version=seen + 1))
        with pytest.raises(StaleDataError):
            write_row(session, stale, {"business_status": "mine"}, version="lock_version")
        assert (stale.business_status, stale.lock_version) == (None, seen)
    with db.reading() as session:
        assert session.get(ProcessInstance, instance_id).business_status == "moved on"
