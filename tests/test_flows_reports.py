"""The real report flows under Prefect, against the embedded default (`workflows.serve.start_embedded`):
a `prefect server start` child process on 127.0.0.1 and the three deployments served by a Runner in a
thread of this process. One server for the module (it costs ~15 s to start); SQLite for Tansiq.

- the deployments are registered with their cron schedules in Asia/Riyadh time;
- each flow, called directly, archives its files, records its report run with the flow run's id and
  leaves a markdown summary, a table and a link artifact;
- a deployment run started through the API is picked up by the served Runner (a subprocess), which
  writes its report run into the same Tansiq database;
- a failing flow records a failed run; stopping the embedded default ends the processes it started.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from engine.foundation import clock
from engine.foundation.settings import get_settings
from engine.reports import archive, runs
from engine.reports.runs import ReportRun
from engine.reports.settings import get_report_settings
from engine.storage.db import Database
from engine.system import migrate
from tests.test_reports_world import DAY, build, use_reports_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from workflows.serve import free_port, start_embedded

    folder = tmp_path_factory.mktemp("flows")
    url = f"sqlite:///{folder / 'tansiq.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TANSIQ_DATABASE_URL", url)  # the flows (and the Runner's subprocesses) use this database
        patch.setenv("PREFECT_LOGGING_LEVEL", "WARNING")
        use_reports_dir(patch, folder / "reports")
        get_settings.cache_clear()
        migrate.upgrade(url)
        db = Database(url)
        build(db)
        clock.set_now(None)
        handle = start_embedded(home=folder / "prefect", port=free_port(), poll_seconds=1, ui=False)
        try:
            yield db, handle
        finally:
            handle.stop()
            db.dispose()
            get_settings.cache_clear()
            get_report_settings.cache_clear()
    assert handle.server.poll() is not None and not handle.running  # every process it started has ended


@pytest.fixture
def api(served):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: served[1].api_url}):
        yield served[0]


def test_deployments_are_served_on_cron_schedules_in_riyadh_time(api):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        found = {}
        for name in ("tansiq-daily-report/daily", "tansiq-periodic-report/periodic",
                     "tansiq-seasonal-report/seasonal", "tansiq-daily-digest/daily"):
            deployment = client.read_deployment_by_name(name)
            [schedule] = deployment.schedules
            found[name] = (schedule.schedule.cron, schedule.schedule.timezone, schedule.active)
    assert found == {
        "tansiq-daily-report/daily": ("15 0 * * *", "Asia/Riyadh", True),
        "tansiq-periodic-report/periodic": ("30 0 * * 0", "Asia/Riyadh", True),
        "tansiq-seasonal-report/seasonal": ("45 0 * * 0", "Asia/Riyadh", True),
        "tansiq-daily-digest/daily": ("0 6 * * *", "Asia/Riyadh", True),
    }


def _artifacts(flow_run_id):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def test_the_flows_archive_files_record_runs_and_leave_artifacts(api):
    from workflows.reports import daily_report, periodic_report, seasonal_report

    calls = [
        (daily_report, {"day": DAY, "formats": ["pdf", "html", "xlsx", "csv", "json"], "languages": ["ar"]}),
        (periodic_report, {"start": date(2026, 5, 14), "end": DAY, "formats": ["xlsx", "json"], "languages": ["en"]}),
        (seasonal_report, {"season_year": 1447, "formats": ["csv"], "languages": ["ar"]}),
    ]
    for report_flow, parameters in calls:
        state = report_flow(**parameters, return_state=True)
        assert state.is_completed(), state.message
        result = state.result()
        flow_run_id = str(state.state_details.flow_run_id)
        with api.reading() as session:
            run = runs.get(session, result["run_id"])
        assert run.status == runs.SUCCEEDED and run.prefect_flow_run_id == flow_run_id and run.trigger == "flow"
        assert len(run.files) == len(result["files"]) > 0
        root = get_report_settings().archive_dir
        with api.reading() as session:  # in the file store (the database by default)
            assert all(archive.locate(session, f).size == f["bytes"] for f in run.files)
        key = f"tansiq-{run.kind}-report"
        found = {a.key: a for a in _artifacts(flow_run_id)}
        assert set(found) == {key, f"{key}-figures", f"{key}-files"}  # a summary, a table, a link
        summary, table, link = found[key], found[f"{key}-figures"], found[f"{key}-files"]
        assert summary.type == "markdown" and f"Report run **{run.id}**" in summary.data
        assert run.files[0]["path"] in summary.data
        assert table.type == "table" and "audit_event_id" in str(table.data)
        assert f"](file://{root}" in link.data and f"run-{run.id:06d}" in link.data
    with api.reading() as session:
        daily_run = session.scalars(select(ReportRun).where(ReportRun.kind == "daily")).first()
    assert daily_run.summary["received"] == 5 and daily_run.summary["hijri"] == ["1447-12-03", "1447-12-03"]


def test_a_deployment_run_is_executed_by_the_served_runner(api):
    from prefect.deployments import run_deployment

    flow_run = run_deployment("tansiq-daily-report/daily", timeout=180,
                              parameters={"day": "2026-05-19", "formats": ["json"], "languages": ["ar"]})
    assert flow_run.state.is_completed(), flow_run.state.message
    with api.reading() as session:
        [run] = session.scalars(select(ReportRun).where(ReportRun.prefect_flow_run_id == str(flow_run.id))).all()
    assert run.status == runs.SUCCEEDED and run.period_start == date(2026, 5, 19)
    with api.reading() as session:
        assert archive.locate(session, run.files[0]).size == run.files[0]["bytes"]


def test_a_failing_flow_records_a_failed_run(api):
    from workflows.reports import daily_report

    state = daily_report.with_options(retries=0)(day=date(2077, 1, 1), formats=["json"], return_state=True)
    assert state.is_failed()
    with api.reading() as session:
        [run] = session.scalars(select(ReportRun).where(ReportRun.period_start == date(2077, 1, 1))).all()
    assert run.status == runs.FAILED and "has not begun" in run.error
    assert run.prefect_flow_run_id == str(state.state_details.flow_run_id)


@pytest.fixture
def prefect_configured(api, served, monkeypatch):
    """TANSIQ_PREFECT_API_URL set, as `tansiq serve` sets it for its API processes."""
    monkeypatch.setenv("TANSIQ_PREFECT_API_URL", served[1].api_url)
    get_settings.cache_clear()
    yield api
    get_settings.cache_clear()


def _finished(db, run_id, seconds=180):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with db.reading() as session:
            run = runs.get(session, run_id)
        if run.status in (runs.SUCCEEDED, runs.FAILED):
            return run
        time.sleep(0.5)
    pytest.fail(f"report run {run_id} did not finish")


def _flow_run_settled(flow_run_id, seconds=60):
    """The flow run once Prefect has recorded its final state.

    The flow marks Tansiq's run succeeded in its body; Prefect records the flow run completed only
    after the body returns, so the two are briefly apart."""
    import time

    from prefect import get_client

    deadline = time.monotonic() + seconds
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state.is_final() or time.monotonic() > deadline:
                return flow_run
            time.sleep(0.25)


def test_run_now_goes_through_the_deployment_and_fills_the_queued_run(prefect_configured):
    from prefect import get_client

    from workflows import dispatch

    db = prefect_configured
    queued = dispatch.request_run(db, "daily", day=date(2026, 5, 18), formats=["json", "csv"], languages=["ar"],
                                  trigger="api", requested_by="secretariat")
    assert queued.status == runs.QUEUED and queued.prefect_flow_run_id and queued.trigger == "api"
    run = _finished(db, queued.id)
    assert run.status == runs.SUCCEEDED, run.error
    assert run.id == queued.id and run.requested_by == "secretariat" and run.period_start == date(2026, 5, 18)
    assert {f["format"] for f in run.files} == {"json", "csv"}
    flow_run = _flow_run_settled(run.prefect_flow_run_id)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(flow_run.deployment_id)
    assert flow_run.state.is_completed() and deployment.name == "daily" and "run-now" in flow_run.tags
    assert {a.key for a in _artifacts(run.prefect_flow_run_id)} >= {"tansiq-daily-report"}
    with db.reading() as session:  # one run, not a second one opened by the flow
        same_day = select(ReportRun.id).where(ReportRun.period_start == date(2026, 5, 18))
        assert session.scalars(same_day).all() == [run.id]


def test_run_now_refuses_bad_input_before_anything_is_queued(prefect_configured):
    from engine.foundation.errors import InvalidInput
    from workflows import dispatch

    db = prefect_configured
    with db.reading() as session:
        before = runs.count_runs(session)
    with pytest.raises(InvalidInput):
        dispatch.request_run(db, "daily", day=date(2026, 5, 18), formats=["docx"], trigger="api", requested_by="x")
    with db.reading() as session:
        assert runs.count_runs(session) == before


def test_run_now_makes_the_report_here_when_prefect_cannot_be_reached(api, monkeypatch):
    from workflows import dispatch
    from workflows.serve import free_port

    monkeypatch.setenv("TANSIQ_PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")  # nobody listens
    get_settings.cache_clear()
    try:
        run = dispatch.request_run(api, "daily", day=date(2026, 5, 17), formats=["json"], languages=["en"],
                                   trigger="api", requested_by="secretariat")
    finally:
        get_settings.cache_clear()
    assert run.status == runs.SUCCEEDED and run.prefect_flow_run_id is None and run.trigger == "api"


def test_the_daily_digest_flow_queues_each_entity_once_a_day(api):
    from engine.work.notifications import Notification
    from workflows.reports import daily_digest

    first = daily_digest(day=date(2026, 5, 21))
    again = daily_digest(day=date(2026, 5, 21))
    with api.reading() as session:
        keys = session.scalars(select(Notification.source_key).where(
            Notification.template == "daily_digest")).all()
    assert again["entities"] == [] and len(keys) == len(first["entities"]) == len(set(keys))
