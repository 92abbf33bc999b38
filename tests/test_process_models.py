"""Deploy: validation before storage, checksum versioning, idempotence, instances keep their version."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.bpmn import process_models
from engine.bpmn.process_models import ProcessModel
from engine.foundation.errors import ModelRejected, NotFound
from tests.conftest import read_model
from tests.helpers import complete, count, deploy, instance, start, the_open_item


def _changed(content: bytes) -> bytes:
    return content.replace(b'name="Second step"', b'name="Second step, revised"')


def test_deploy_stores_one_version(db):
    [model] = deploy(db, "two-steps.bpmn")
    assert (model.key, model.version, model.name) == ("two_steps", 1, "Two steps")
    assert model.spec["process_id"] == "two_steps"
    assert count(db, ProcessModel) == 1


def test_identical_content_is_the_same_version(db):
    first = deploy(db, "two-steps.bpmn")[0]
    with db.transaction() as session:
        again = process_models.deploy(session, read_model("two-steps.bpmn"), "renamed.bpmn", "someone else")
    assert not again.created
    assert again.model.id == first.id
    assert count(db, ProcessModel) == 1


def test_changed_content_is_a_new_version_and_running_instances_keep_theirs(db):
    deploy(db, "two-steps.bpmn")
    old_instance = start(db, "two_steps", {"responsible_entity": "housing", "deadline": "2026-06-01T12:00:00Z"})
    with db.transaction() as session:
        second = process_models.deploy(session, _changed(read_model("two-steps.bpmn")), "two-steps.bpmn", "admin")
    assert second.created and second.model.version == 2
    new_instance = start(db, "two_steps", {"responsible_entity": "housing", "deadline": "2026-06-01T12:00:00Z"})
    assert instance(db, old_instance).model.version == 1
    assert instance(db, new_instance).model.version == 2

    complete(db, the_open_item(db, old_instance, "first").id, {"note": "done"})
    assert the_open_item(db, old_instance, "second").name == "Second step"
    complete(db, the_open_item(db, new_instance, "first").id, {"note": "done"})
    assert the_open_item(db, new_instance, "second").name == "Second step, revised"

    with db.reading() as session:
        assert [m.version for m in process_models.list_versions(session, "two_steps")] == [1, 2]
        assert [(m.key, m.version) for m in process_models.list_models(session)] == [("two_steps", 2)]
        assert process_models.get_model(session, "two_steps", 1).checksum != second.model.checksum


def test_unknown_model_is_not_found(db):
    with db.reading() as session, pytest.raises(NotFound, match="no process model 'nope'"):
        process_models.get_model(session, "nope")


def test_a_refused_file_in_a_batch_stores_nothing(db):
    bad = read_model("two-steps.bpmn").replace(b"responsible_entity", b"__import__('os')")
    with pytest.raises(ModelRejected) as refused, db.transaction() as session:
        process_models.deploy(session, read_model("deadline.bpmn"), "deadline.bpmn", "admin")
        process_models.deploy(session, bad, "two-steps.bpmn", "admin")
    assert refused.value.element_id == "first"
    assert "__import__" in str(refused.value)
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(ProcessModel)) == 0


def test_every_shipped_and_test_model_deploys(db):
    deploy(db, "two-steps.bpmn", "deadline.bpmn", "message.bpmn", "escalation-event.bpmn", "incident.bpmn",
           "rework.bpmn")
    assert count(db, ProcessModel) == 6
