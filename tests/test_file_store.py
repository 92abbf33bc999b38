"""Shared file storage (issue 19): files in the database in chunks, streamed both ways, committed with the
row that names them, stored once; old disk files still read; any node serves any file; import jobs in a
table; `tansiq files move|verify`. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from api.app import create_app
from engine.directives import directive_import, evidence_store
from engine.directives.directives import Directive
from engine.directives.evidence import Evidence
from engine.foundation import clock
from engine.foundation.errors import Conflict, NotFound
from engine.reports import archive
from engine.storage import file_store
from engine.storage.db import Database
from engine.storage.file_store import CHUNK_SIZE, DATABASE, DISK, CorruptFile, FileBlob, FileChunk
from engine.system import import_jobs
from tests.conftest import deploy_shipped
from tests.test_api_support import NOW, PDF, World, make_settings, open_world
from tests.test_directive_import import SHIPPED, row, workbook
from tests.ui_support import signed_in

ATTACHMENT_HEADERS = {"content-security-policy": "default-src 'none'; sandbox", "cache-control": "private, no-store"}


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    monkeypatch.setenv("TANSIQ_REPORTS_DIR", str(tmp_path / "node-a" / "reports"))
    archive.get_report_settings.cache_clear()
    with open_world(db, tmp_path / "node-a", monkeypatch) as built:
        with db.transaction() as session:
            for name in SHIPPED:
                deploy_shipped(session, name)
        yield built
    archive.get_report_settings.cache_clear()


@contextmanager
def other_node(world: World, home: Path) -> Iterator[World]:
    """A second API node: its own app, connection pool and disk, the same database."""
    db = Database(world.db.url.render_as_string(hide_password=False), pool_size=4)
    settings = make_settings(home, world.settings.database_url)
    try:
        with TestClient(create_app(settings, database=db), raise_server_exceptions=False) as client:
            yield World(db=db, client=client, settings=settings, user_ids=world.user_ids)
    finally:
        db.dispose()


def _big(size: int) -> tempfile.SpooledTemporaryFile:
    """A file of `size` random bytes, on disk (as Starlette spools a big upload)."""
    spooled = tempfile.SpooledTemporaryFile(max_size=1024)  # noqa: SIM115
    for _ in range(0, size, 1 << 20):
        spooled.write(os.urandom(min(1 << 20, size - spooled.tell())))
    spooled.seek(0)
    return spooled


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _count(db: Database, table) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count()).select_from(table))


# --- the store itself -------------------------------------------------------------------------------------

def test_a_file_of_many_chunks_is_written_and_read_a_chunk_at_a_time(db, tmp_path):
    size = 24 * CHUNK_SIZE + 1234  # ~6 MB
    source = _big(size)
    sha, _ = file_store.digest(source)
    with db.transaction() as session:  # statements compiled once, before measuring
        file_store.put(session, b"warm-up", home=tmp_path)
    tracemalloc.start()
    with db.transaction() as session:
        stored = file_store.put(session, source, home=tmp_path)
    _, written_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stored == file_store.Stored(sha, size, DATABASE)
    with db.reading() as session:
        blob = session.get(FileBlob, sha)
        sizes = list(session.scalars(select(func.length(FileChunk.data)).where(FileChunk.sha256 == sha)
                                     .order_by(FileChunk.seq)))
        found = file_store.locate(session, tmp_path, sha)
    assert (blob.size, blob.chunks) == (size, 25) and sizes == [CHUNK_SIZE] * 24 + [1234]
    assert found == file_store.Located(sha, size) and found.backend == DATABASE
    tracemalloc.start()
    hasher, pieces = hashlib.sha256(), []
    for piece in found.chunks(db):  # what a download streams
        hasher.update(piece)
        pieces.append(len(piece))
    _, read_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert pieces == sizes and hasher.hexdigest() == sha
    assert written_peak < 6 * CHUNK_SIZE and read_peak < 6 * CHUNK_SIZE, (written_peak, read_peak)  # never whole
    assert not (tmp_path / "evidence").exists()


def test_a_rolled_back_upload_leaves_no_blob(db, tmp_path):
    with pytest.raises(RuntimeError), db.transaction() as session:
        file_store.put(session, _big(3 * CHUNK_SIZE), home=tmp_path)
        assert session.scalar(select(func.count()).select_from(FileChunk)) == 3
        raise RuntimeError("the row that names the file failed")
    assert _count(db, FileBlob) == 0 and _count(db, FileChunk) == 0


def test_the_same_content_is_stored_once(db, tmp_path):
    content = os.urandom(CHUNK_SIZE + 10)
    for _ in range(2):
        with db.transaction() as session:
            file_store.put(session, io.BytesIO(content), home=tmp_path)
    with db.transaction() as session:  # twice in one transaction too
        file_store.put(session, content, home=tmp_path)
        file_store.put(session, content, home=tmp_path)
    assert _count(db, FileBlob) == 1 and _count(db, FileChunk) == 2


def test_a_file_that_does_not_hash_to_its_name_is_refused_and_nothing_is_stored(db, tmp_path):
    for backend in (DATABASE, DISK):
        with pytest.raises(CorruptFile), db.transaction() as session:
            file_store.put(session, b"changed meanwhile", home=tmp_path, backend=backend, sha256=_sha(b"original"))
    assert _count(db, FileBlob) == 0 and not [p for p in tmp_path.rglob("*") if p.is_file()]
    with pytest.raises(evidence_store.InvalidInput, match="not a SHA-256"), db.reading() as session:
        file_store.locate(session, tmp_path, "../../etc/passwd")


def test_the_evidence_checks_work_on_a_file_object():
    limits = evidence_store.Limits(max_bytes=200)
    spooled = tempfile.SpooledTemporaryFile(max_size=10)  # noqa: SIM115
    spooled.write("ملاحظات\n".encode() * 10)
    checked = evidence_store.check("notes", spooled, limits)
    assert (checked.kind, checked.filename, checked.size) == ("txt", "notes.txt", len("ملاحظات\n".encode()) * 10)
    assert checked.sha256 == _sha(checked.data)
    with pytest.raises(evidence_store.EvidenceTooLarge, match="larger than 200 bytes"):
        evidence_store.check("big.pdf", io.BytesIO(PDF + b"0" * 200), limits)
    with pytest.raises(evidence_store.UnsupportedEvidence):
        evidence_store.check("a.txt", io.BytesIO("نص\x07".encode()), limits)  # a control character, late
    # a multi-byte character split across two reads is still text
    assert evidence_store.sniff_file(io.BytesIO(b"a" * (64 * 1024 - 1) + "ع".encode())) == "txt"


# --- nodes -------------------------------------------------------------------------------------------------

def _step(world: World) -> int:
    directive = world.create_directive()
    return world.open_step(directive["id"], "acknowledge")


def _assert_attachment(response, content: bytes, filename: str) -> None:
    assert response.status_code == 200, response.text
    assert response.content == content and response.headers["content-length"] == str(len(content))
    assert response.headers["content-disposition"].startswith("attachment;") and filename in \
        response.headers["content-disposition"]
    for name, value in ATTACHMENT_HEADERS.items():
        assert response.headers[name] == value


def test_evidence_minutes_and_reports_stored_by_one_node_download_from_another(world: World, tmp_path):
    big_text = ("سطر من الشواهد " * 40 + "\n").encode() * 600  # ~0.7 MB: several chunks
    step = _step(world)
    uploaded = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/evidence",
                          files=[("files", ("evidence.txt", big_text, "text/plain"))])
    assert uploaded.status_code == 201, uploaded.text
    evidence = uploaded.json()[0]
    meeting = world.call("secretariat", "POST", "/api/v1/meetings",
                         json={"number": 7, "title_ar": "الاجتماع السابع", "held": "2026-05-19"})
    assert meeting.status_code == 201, meeting.text
    minutes = world.call("secretariat", "POST", f"/api/v1/meetings/{meeting.json()['id']}/documents",
                         files=[("files", ("minutes.pdf", PDF, "application/pdf"))])
    assert minutes.status_code == 201, minutes.text
    document = minutes.json()[0]
    produced = archive.produce(world.db, "daily", formats=["json"], languages=["ar"], reference=NOW)
    with world.db.reading() as session:
        report_json = file_store.read_bytes(session, world.settings.home, produced.run.files[0]["sha256"])
    assert not (Path(world.settings.home) / "evidence").exists()  # nothing on node A's disk
    with other_node(world, tmp_path / "node-b") as node_b:
        _assert_attachment(node_b.call("admin", "GET", evidence["download_url"]), big_text, "evidence.txt")
        _assert_attachment(node_b.call("admin", "GET", f"/api/v1/meetings/{meeting.json()['id']}/documents/"
                                                       f"{document['id']}"), PDF, "minutes.pdf")
        _assert_attachment(node_b.call("admin", "GET", f"/api/v1/reports/{produced.run.id}/json"), report_json,
                           "daily-")
        browser = signed_in(node_b, "admin")
        _assert_attachment(browser.get(f"/evidence/{evidence['id']}"), big_text, "evidence.txt")
        _assert_attachment(browser.get(f"/meetings/{meeting.json()['id']}/documents/{document['id']}"), PDF,
                           "minutes.pdf")
        _assert_attachment(browser.get(f"/reports/{produced.run.id}/0"), report_json, "daily-")
        assert node_b.call("transport.user", "GET", evidence["download_url"]).status_code == 404


def test_files_on_disk_from_before_are_still_served(world: World, tmp_path):
    step = _step(world)
    checked = evidence_store.check("old.pdf", PDF, world.settings.evidence_limits)
    with world.db.transaction() as session:
        [row] = evidence_store.store_and_record(session, world.settings.home, [checked], "housing.user",
                                                directive_id=None, work_item_id=step, backend=DISK)
    assert evidence_store.path_for(world.settings.home, checked.sha256).read_bytes() == PDF
    assert _count(world.db, FileBlob) == 0
    _assert_attachment(world.call("admin", "GET", f"/api/v1/evidence/{row.id}"), PDF, "old.pdf")
    # a report archived in its run folder (the disk backend) is served from there
    archived = _archive_on_disk(world)
    _assert_attachment(world.call("admin", "GET", f"/api/v1/reports/{archived.id}/csv"), b"a,b\n", "daily-")


def _archive_on_disk(world: World):
    from engine.reports import runs

    with world.db.reading() as session:
        request = archive.resolve(session, "daily", formats=["csv"], languages=["ar"], reference=NOW)
    run_id = archive.open_run(world.db, request, "cli", "tester")
    files = archive.Archive(request, run_id, backend=DISK)
    files.add(request.file_name("csv", "ar"), "csv", "ar", b"a,b\n")
    entries = files.commit()
    assert archive.path_of(entries[0]).read_bytes() == b"a,b\n"
    with world.db.transaction() as session:
        return runs.succeed(session, run_id, entries, {})


# --- import jobs in a table --------------------------------------------------------------------------------

def _wait(browser, job_url: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = browser.get(f"{job_url}/progress", headers={"HX-Request": "true"})
        if "HX-Redirect" in response.headers or response.status_code == 303:
            return browser.get(job_url).text
        time.sleep(0.05)
    raise AssertionError("the import job did not finish")


def test_an_import_job_is_seen_and_run_from_any_node(world: World, tmp_path):
    node_a = signed_in(world, "secretariat", "en")
    node_a.get("/import")
    response = node_a.post("/import", {}, files={"file": ("directives.xlsx", workbook([row(title="أول"),
                                                                                          row(title="ثان")]),
                                                           "application/octet-stream")})
    assert response.status_code == 303, response.text[:300]
    job = response.headers["location"]
    assert "Every row is valid." in _wait(node_a, job)
    with other_node(world, tmp_path / "node-b") as node_b:
        there = signed_in(node_b, "secretariat", "en")
        page = there.get(job)
        assert page.status_code == 200 and "Every row is valid." in page.text
        assert signed_in(node_b, "admin", "en").get(job).status_code == 404  # someone else's job
        there.post(f"{job}/run", {"mode": "all_or_nothing"})  # the import runs on node B
        assert "2 directives were imported." in _wait(there, job)
    assert "2 directives were imported." in node_a.get(job).text
    assert node_a.post(f"{job}/run", {"mode": "all_or_nothing"}).status_code == 409  # once only
    with world.db.reading() as session:
        [stored] = session.scalars(select(import_jobs.ImportJob))
        assert stored.phase == import_jobs.DONE and stored.sha256 is None and stored.report["imported"] == 2
        assert file_store.database_digests(session) == []  # the workbook went with the job's end
        assert session.scalar(select(func.count()).select_from(Directive)) == 2


def test_a_job_whose_node_stopped_shows_as_interrupted_and_never_imports_late(world: World, tmp_path):
    owner = world.user_ids["secretariat"]
    with world.db.transaction() as session:
        job = import_jobs.create(session, world.settings.home, owner, "d.xlsx", io.BytesIO(workbook([row()])), None,
                                 max_bytes=directive_import.MAX_BYTES)
        session.execute(update(import_jobs.ImportJob).values(phase=import_jobs.VALIDATED))
        session.refresh(job)
        import_jobs.claim_for_import(session, job, directive_import.ALL_OR_NOTHING, False)
        job_id = job.id
    browser = signed_in(world, "secretariat", "en")
    page = browser.get(f"/import/{job_id}/progress", headers={"HX-Request": "true"})
    assert page.status_code == 200 and "import-bar" in page.text  # still running: its heartbeat is fresh
    clock.set_now(NOW + import_jobs.INTERRUPTED_AFTER + timedelta(seconds=1))  # its node died: no heartbeat since
    page = browser.get(f"/import/{job_id}")
    assert page.status_code == 422 and "Nothing was imported." in page.text and "stopped" in page.text
    # the node was only slow: it finds the job closed and imports nothing; an import that ends after the job
    # was closed is rolled back, as marking it done inside the import's transaction fails
    import_jobs.run(world.db, world.settings.home, job_id, "secretariat", dry_run=False,
                    importer=directive_import.import_directives)
    with pytest.raises(Conflict, match="interrupted"), world.db.transaction() as session:
        import_jobs._close(session, job_id, import_jobs.IMPORTING, import_jobs.DONE, report={})
    with world.db.reading() as session:
        stored = session.get(import_jobs.ImportJob, job_id)
        assert (stored.phase, stored.error) == (import_jobs.FAILED, import_jobs.INTERRUPTED)
        assert stored.sha256 is None and file_store.database_digests(session) == []
        assert session.scalar(select(func.count()).select_from(Directive)) == 0
    with world.db.transaction() as session, pytest.raises(Conflict):
        import_jobs.claim_for_import(session, session.get(import_jobs.ImportJob, job_id), "valid_rows", False)
    with world.db.transaction() as session, pytest.raises(NotFound):
        import_jobs.get(session, job_id, world.user_ids["admin"])


# --- tansiq files move | verify -----------------------------------------------------------------------------

@contextmanager
def _cli_env(world: World, monkeypatch) -> Iterator[CliRunner]:
    from engine.foundation.settings import get_settings
    from engine.storage import db as engine_db

    monkeypatch.setenv("TANSIQ_DATABASE_URL", world.settings.database_url)
    monkeypatch.setenv("TANSIQ_HOME", str(world.settings.home))
    get_settings.cache_clear()
    monkeypatch.setattr(engine_db, "_databases", {})
    try:
        yield CliRunner()
    finally:
        for database in engine_db._databases.values():
            database.dispose()
        monkeypatch.undo()
        get_settings.cache_clear()


def _files(runner: CliRunner, *args: str):
    from api.cli import app

    return runner.invoke(app, ["files", *args])


def _stored_files(world: World) -> dict[str, bytes]:
    """Three files: evidence in the database, minutes in the database, one older file on disk."""
    contents = {name: os.urandom(size) + b"%PDF-" for name, size in (("a", 3 * CHUNK_SIZE), ("b", 100),
                                                                       ("c", CHUNK_SIZE + 1))}
    with world.db.transaction() as session:
        for name, content in contents.items():
            file_store.put(session, content, home=world.settings.home, backend=DISK if name == "c" else DATABASE)
    return {_sha(content): content for content in contents.values()}


def _everything_in(world: World, backend: str, expected: dict[str, bytes]) -> None:
    home = Path(world.settings.home)
    with world.db.reading() as session:
        for sha, content in expected.items():
            found = file_store.locate(session, home, sha)
            assert found is not None and found.backend == backend, sha
            assert b"".join(found.chunks(world.db)) == content
        assert len(file_store.database_digests(session)) == (len(expected) if backend == DATABASE else 0)
    assert len(file_store.disk_digests(home)) == (len(expected) if backend == DISK else 0)


def test_files_move_to_disk_and_back_with_every_checksum_kept(world: World, monkeypatch):
    expected = _stored_files(world)
    with _cli_env(world, monkeypatch) as runner:
        dry = _files(runner, "move", "--to", "disk", "--dry-run")
        assert dry.exit_code == 0 and "2 file(s)" in dry.stdout, dry.output
        assert len(file_store.disk_digests(Path(world.settings.home))) == 1  # nothing moved
        moved = _files(runner, "move", "--to", "disk")
        assert moved.exit_code == 0 and "moved 2 file(s)" in moved.stdout, moved.output
        _everything_in(world, DISK, expected)
        assert _files(runner, "verify").exit_code == 0
        back = _files(runner, "move", "--to", "database")
        assert back.exit_code == 0 and "moved 3 file(s)" in back.stdout, back.output
        _everything_in(world, DATABASE, expected)
        checked = _files(runner, "verify")
        assert checked.exit_code == 0 and "3 stored file(s) checked" in checked.stdout, checked.output
        wrong = _files(runner, "move", "--to", "s3")
        assert wrong.exit_code == 2 and "'database'" in wrong.output and "'disk'" in wrong.output  # a usage error


def test_a_corrupted_copy_is_refused_and_its_source_kept(world: World, monkeypatch):
    expected = _stored_files(world)
    home = Path(world.settings.home)
    [on_disk] = file_store.disk_digests(home)
    file_store.disk_path(home, on_disk).write_bytes(b"bit rot")
    with _cli_env(world, monkeypatch) as runner:
        refused = _files(runner, "move", "--to", "database")
        assert refused.exit_code == 1 and "does not hash to its SHA-256" in refused.output, refused.output
        assert len(refused.output.strip().splitlines()[-1]) < 300 and refused.output.count("error:") == 1
        assert file_store.disk_path(home, on_disk).read_bytes() == b"bit rot"  # kept where it was
        with world.db.reading() as session:
            assert file_store.locate(session, home, on_disk).backend == DISK
        verify = _files(runner, "verify")
        assert verify.exit_code == 1 and on_disk in verify.output
        file_store.disk_path(home, on_disk).write_bytes(expected[on_disk])  # repaired
        in_database = sorted(set(expected) - {on_disk})[0]
        with world.db.transaction() as session:
            session.execute(update(FileChunk).where(FileChunk.sha256 == in_database, FileChunk.seq == 0)
                            .values(data=b"rot"))
        verify = _files(runner, "verify")
        assert verify.exit_code == 1 and f"database:{in_database}" in verify.output
        refused = _files(runner, "move", "--to", "disk")
        assert refused.exit_code == 1 and in_database in refused.output
        with world.db.reading() as session:
            assert file_store.locate(session, home, in_database).backend == DATABASE  # the database copy kept
        assert not file_store.disk_path(home, in_database).exists()


def test_verify_names_a_file_a_row_needs_that_no_backend_holds(world: World, monkeypatch):
    step = _step(world)
    evidence = world.call("housing.user", "POST", f"/api/v1/tasks/{step}/evidence",
                          files=[("files", ("a.pdf", PDF, "application/pdf"))]).json()[0]
    with world.db.transaction() as session:
        file_store.remove_database(session, evidence["sha256"])
        assert session.scalar(select(func.count()).select_from(Evidence)) == 1
    with _cli_env(world, monkeypatch) as runner:
        verify = _files(runner, "verify")
    assert verify.exit_code == 1 and f"evidence {evidence['id']}" in verify.output and "missing" in verify.output
