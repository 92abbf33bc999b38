"""Backup and restore round-trip a running system: directives, steps and the audit chain come back
exactly as they were, and what happened after the backup is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime

from sqlalchemy import select

from engine import audit, clock, directives, entities, seasons
from engine.audit import AuditEvent
from engine.directives import Directive, NewDirective
from engine.work_items import WorkItem
from tests.helpers import complete, deploy, the_open_item

NOW = datetime(2026, 5, 20, 6, tzinfo=UTC)


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TANSIQ_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _snapshot(db) -> tuple:
    with db.reading() as session:
        return (
            [(d.reference, d.status, d.current_steps, d.deadline_at) for d in
             session.scalars(select(Directive).order_by(Directive.id))],
            [(w.task_id, w.element_id, w.status, w.completed_by) for w in
             session.scalars(select(WorkItem).order_by(WorkItem.id))],
            [(e.id, e.hash) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))],
        )


def _directive(db, title: str) -> Directive:
    with db.transaction() as session:
        return directives.create(session, NewDirective(title=title, kind="directive", responsible_entity="housing",
                                                       deadline="PT6H", process_model_key="deadline"),
                                 "secretariat", launch_now=True)


def test_backup_and_restore_round_trip(db, database_url, tmp_path):
    clock.set_now(NOW)
    deploy(db, "deadline.bpmn")
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
    first = _directive(db, "قبل النسخ الاحتياطي")
    complete(db, the_open_item(db, first.instance_id, "acknowledge").id, actor="housing.user")
    _directive(db, "مفتوح عند النسخ")
    before = _snapshot(db)

    target = tmp_path / "tansiq.backup"
    made = _cli(database_url, "backup", str(target))
    assert made.returncode == 0, made.stderr
    assert _cli(database_url, "backup", str(target)).returncode == 1  # never overwrites

    _directive(db, "بعد النسخ الاحتياطي")
    assert _snapshot(db) != before
    assert _cli(database_url, "restore", str(target)).returncode == 1  # asks for --yes
    restored = _cli(database_url, "restore", str(target), "--yes")
    assert restored.returncode == 0, restored.stderr

    assert _snapshot(db) == before
    with db.reading() as session:
        assert audit.verify(session).ok


def test_restoring_a_file_that_is_not_a_backup_changes_nothing(db, database_url, tmp_path):
    bogus = tmp_path / "bogus.backup"
    bogus.write_bytes(b"not a backup at all")
    before = _snapshot(db)
    result = _cli(database_url, "restore", str(bogus), "--yes")
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "not a" in result.stderr
    assert _snapshot(db) == before
