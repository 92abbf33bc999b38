"""Producing a report without Prefect (what `tansiq reports run` does): defaults for the period, the
archive on disk, the report run row and its audit event; a failure is recorded and leaves no files.
On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest
from typer.testing import CliRunner

from engine.foundation.errors import InvalidInput
from engine.foundation.settings import get_settings
from engine.reports import archive, runs
from engine.reports.settings import get_report_settings
from engine.storage import audit, file_store
from tests.test_reports_world import DAY, END, build, use_reports_dir


@pytest.fixture
def world(db, tmp_path, monkeypatch):
    use_reports_dir(monkeypatch, tmp_path / "reports")
    yield build(db)
    get_report_settings.cache_clear()


def test_produce_archives_every_file_and_records_the_run(world):
    produced = archive.produce(world.db, "daily", formats=["pdf", "xlsx", "csv", "json"], languages=["ar", "en"])
    run = produced.run
    assert (run.kind, run.period_start, run.period_end, run.status) == ("daily", date(2026, 5, 19),
                                                                          date(2026, 5, 19), runs.SUCCEEDED)
    assert run.trigger == "cli" and run.finished_at == END and run.error is None
    assert sorted((f["format"], f["language"]) for f in run.files) == [
        ("csv", "ar"), ("csv", "en"), ("json", ""), ("pdf", "ar"), ("pdf", "en"), ("xlsx", "ar"), ("xlsx", "en")]
    root = get_report_settings().archive_dir
    contents = {}
    with world.db.reading() as session:  # the default files backend: the database, not the reports folder
        for entry, path in zip(run.files, produced.paths, strict=True):
            assert path == root / entry["path"] and path.parent.name == f"run-{run.id:06d}"
            found = archive.locate(session, entry)
            assert found.backend == file_store.DATABASE and found.size == entry["bytes"]
            contents[path.suffix] = content = file_store.read_bytes(session, get_settings().home, entry["sha256"])
            assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert not root.exists() or not any(root.rglob("*.*"))
    data = json.loads(contents[".json"])
    assert data["kind"] == "daily" and data["counts"]["received"] == 3  # yesterday, the 19th: A B H
    assert run.summary["received"] == 3 and run.summary["hijri"] == ["1447-12-02", "1447-12-02"]
    with world.db.reading() as session:
        stored = runs.get(session, run.id)
        assert stored.file("pdf", "en")["path"].endswith("daily-2026-05-19.en.pdf")
        [event] = audit.timeline(session, runs.subject(run.id))
        assert event.action == "report.generated" and len(event.payload["files"]) == 7
        assert audit.verify(session).ok
        assert [r.id for r in runs.list_runs(session, kind="daily")] == [run.id]


def test_periodic_and_seasonal_defaults(world):
    with world.db.reading() as session:
        week = archive.resolve(session, "periodic")
        season = archive.resolve(session, "seasonal")
        chosen = archive.resolve(session, "periodic", start=date(2026, 5, 1), end=DAY, formats=["csv"])
    assert (week.start, week.end) == (date(2026, 5, 13), date(2026, 5, 19))
    assert (season.season_year, season.start, season.end) == (1447, date(2026, 4, 18), date(2026, 7, 16))
    assert chosen.label == "2026-05-01_2026-05-20" and chosen.outputs() == [("csv", "ar"), ("csv", "en")]
    produced = archive.produce(world.db, "seasonal", formats=["xlsx"], languages=["ar"])
    assert produced.run.season_id is not None and produced.paths[0].name == "seasonal-1447.ar.xlsx"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "weekly"}, "unknown report kind"),
    ({"kind": "daily", "formats": ["docx"]}, "unknown format"),
    ({"kind": "daily", "languages": ["fr"]}, "unknown language"),
    ({"kind": "daily", "start": date(2026, 5, 1)}, "one day"),
    ({"kind": "periodic", "start": DAY, "end": date(2026, 5, 1)}, "ends before"),
])
def test_bad_requests_are_refused_before_a_run_is_recorded(world, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        archive.produce(world.db, **kwargs)
    with world.db.reading() as session:
        assert runs.list_runs(session) == []


def test_a_failure_is_recorded_and_leaves_no_files(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the printer caught fire")

    monkeypatch.setattr(archive, "render", broken)
    with pytest.raises(RuntimeError, match="caught fire"):
        archive.produce(world.db, "daily", day=DAY, formats=["pdf"], languages=["ar"])
    with world.db.reading() as session:
        [run] = runs.list_runs(session)
        assert run.status == runs.FAILED and "caught fire" in run.error and run.files == []
        assert [e.action for e in audit.timeline(session, runs.subject(run.id))] == ["report.failed"]
    assert not any(get_report_settings().archive_dir.rglob("*.pdf"))


def test_cli_runs_a_report_and_prints_the_archived_files(world, monkeypatch):
    from api.cli import app
    from engine.foundation.settings import get_settings
    from engine.storage import db as engine_db

    monkeypatch.setenv("TANSIQ_DATABASE_URL", world.db.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    monkeypatch.setattr(engine_db, "_databases", {})
    try:
        result = CliRunner().invoke(app, ["reports", "run", "daily", "--date", "1447-12-03", "--format", "csv,json",
                                          "--lang", "ar", "--now", END.isoformat()])
        assert result.exit_code == 0, result.output
        files = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
        assert [name for name, _ in files] == ["daily-2026-05-20.ar.csv", "daily-2026-05-20.json"]
        assert files[0][1].startswith("/api/v1/reports/") and files[0][1].endswith("/csv?language=ar")
        listed = CliRunner().invoke(app, ["reports", "list"])
        assert listed.exit_code == 0 and "succeeded" in listed.stdout
        bad = CliRunner().invoke(app, ["reports", "run", "daily", "--date", "2026-13-01"])
        assert bad.exit_code == 1 and "not a date" in bad.output
    finally:
        get_settings.cache_clear()
        for database in engine_db._databases.values():
            database.dispose()
