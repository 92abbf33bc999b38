"""Backup and restore round-trip a running system: directives, steps and the audit chain come back
exactly as they were, and what happened after the backup is gone."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from datetime import UTC, date, datetime

from sqlalchemy import select

from engine.calendar import seasons
from engine.directives import directives
from engine.directives.directives import Directive, NewDirective
from engine.foundation import clock
from engine.people import entities
from engine.storage import audit, file_store
from engine.storage.audit import AuditEvent
from engine.system import migrate
from engine.work.work_items import WorkItem
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


# --- files (issue 19) ------------------------------------------------------------------------------------

def _cli_at(database_url: str, home, reports, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TANSIQ_DATABASE_URL=database_url, TANSIQ_HOME=str(home), TANSIQ_REPORTS_DIR=str(reports))
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _files_everywhere(db, home, reports) -> dict[str, bytes]:
    """Files in the database (several chunks), on disk (content-addressed) and in a report run folder."""
    contents = [os.urandom(3 * file_store.CHUNK_SIZE + 5), b"small in the database", b"on disk, the old layout"]
    with db.transaction() as session:
        for index, content in enumerate(contents):
            file_store.put(session, content, home=home, backend=file_store.DISK if index == 2 else file_store.DATABASE)
    report = reports / "daily" / "2026-05-19" / "run-000001" / "daily-2026-05-19.ar.csv"
    report.parent.mkdir(parents=True)
    report.write_bytes("التاريخ,العدد\n".encode())
    return {hashlib.sha256(c).hexdigest(): c for c in [*contents, report.read_bytes()]}


def _all_files_hold(db, home, reports, expected: dict[str, bytes]) -> None:
    report = reports / "daily" / "2026-05-19" / "run-000001" / "daily-2026-05-19.ar.csv"
    with db.reading() as session:
        for sha, content in expected.items():
            found = file_store.locate(session, home, sha, also=report)
            assert found is not None, sha
            assert file_store.hash_chunks(found.chunks(db))[0] == sha and found.size == len(content)


def test_backup_and_restore_bring_back_every_file_in_either_backend(db, database_url, tmp_path):
    home, reports = tmp_path / "home", tmp_path / "home" / "reports"
    expected = _files_everywhere(db, home, reports)
    target = tmp_path / "all.backup"
    made = _cli_at(database_url, home, reports, "backup", str(target))
    assert made.returncode == 0, made.stderr
    with tarfile.open(target) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["format"] == "tansiq-backup" and manifest["version"] == 1
    assert manifest["revision"] == migrate.head_revision()
    assert manifest["database"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert {m["kind"] for m in manifest["members"]} == {"database", "content", "report"}
    assert all(len(m["sha256"]) == 64 for m in manifest["members"])

    shutil.rmtree(home)  # the disk is lost, and the database changed since
    with db.transaction() as session:
        for sha in file_store.database_digests(session):
            file_store.remove_database(session, sha)
        file_store.put(session, b"written after the backup", home=home)
    restored = _cli_at(database_url, home, reports, "restore", str(target), "--yes")
    assert restored.returncode == 0, restored.stderr
    _all_files_hold(db, home, reports, expected)
    with db.reading() as session:
        assert len(file_store.database_digests(session)) == 2  # what was in the database then, and only that
    verified = _cli_at(database_url, home, reports, "files", "verify")
    assert verified.returncode == 0, verified.stderr


def test_a_damaged_backup_is_refused_before_anything_is_replaced(db, database_url, tmp_path):
    home, reports = tmp_path / "home", tmp_path / "home" / "reports"
    _files_everywhere(db, home, reports)
    target = tmp_path / "all.backup"
    assert _cli_at(database_url, home, reports, "backup", str(target)).returncode == 0
    damaged = tmp_path / "damaged.backup"
    with tarfile.open(target) as tar, tarfile.open(damaged, "w") as out:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            if member.name.startswith("files/content/"):
                data = b"X" + data[1:]  # one byte of one file flipped
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    with db.transaction() as session:
        file_store.put(session, b"after the backup", home=home)
    before = _snapshot(db)
    result = _cli_at(database_url, home, reports, "restore", str(damaged), "--yes")
    assert result.returncode == 1 and "does not match its checksum" in result.stderr, result.stderr
    assert _snapshot(db) == before
    with db.reading() as session:
        assert hashlib.sha256(b"after the backup").hexdigest() in file_store.database_digests(session)


def test_a_backup_of_the_older_format_still_restores(db, database_url, tmp_path):
    from engine.system import backup

    _directive_world(db)
    before = _snapshot(db)
    old = tmp_path / "old.backup"
    backup._dump(database_url, old)  # what `tansiq backup` wrote before issue 19: the bare dump
    _directive(db, "بعد النسخ الاحتياطي")
    restored = _cli(database_url, "restore", str(old), "--yes")
    assert restored.returncode == 0, restored.stderr
    assert _snapshot(db) == before


def _directive_world(db) -> None:
    clock.set_now(NOW)
    deploy(db, "deadline.bpmn")
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
    _directive(db, "قبل النسخ الاحتياطي")
