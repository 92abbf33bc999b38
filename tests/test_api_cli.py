"""The command line added with the API: create entities and users, and `tansiq serve` (API + timers)."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api import cli
from api.settings import get_api_settings
from engine.bpmn import process_models
from engine.calendar import seasons
from engine.directives import directives
from engine.directives.directives import NewDirective
from engine.directives.tallies import Tally
from engine.foundation import clock
from engine.foundation.settings import get_settings
from engine.people import entities, users
from engine.people.login_attempts import MAX_FAILURES, LoginAttempt
from engine.storage.db import Database
from engine.work.instances import ProcessInstance
from engine.work.notifications import Notification
from tests.conftest import read_model

runner = CliRunner()


@pytest.fixture
def env(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = db.url.render_as_string(hide_password=False)
    values = {"TANSIQ_DATABASE_URL": url, "TANSIQ_HOME": str(tmp_path), "TANSIQ_SECRET_KEY": "s" * 48}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    get_api_settings.cache_clear()
    yield values
    get_settings.cache_clear()
    get_api_settings.cache_clear()


def test_create_an_entity_and_its_user(env, db: Database):
    result = runner.invoke(cli.app, ["entities", "create", "--code", "housing", "--name-ar", "الإسكان",
                                     "--name-en", "Housing", "--kind", "government"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.app, ["users", "create", "--username", "housing.lead", "--role", "entity_user",
                                     "--entity", "housing", "--password-stdin"], input="a long enough secret\n")
    assert result.exit_code == 0, result.output
    assert "user housing.lead created" in result.output
    with db.transaction() as session:
        assert users.authenticate(session, "housing.lead", "a long enough secret").entity.code == "housing"


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["entities", "create", "--code", "Bad Code", "--name-ar", "x", "--name-en", "x"], None, "entity code"),
    (["users", "create", "--username", "someone", "--role", "wizard", "--password-stdin"], "long enough pw\n",
     "unknown role"),
    (["users", "create", "--username", "someone", "--role", "viewer", "--password-stdin"], "short\n", "10 characters"),
    (["users", "create", "--username", "someone", "--role", "viewer"], "", "no password"),
    (["users", "create", "--username", "someone", "--role", "entity_user", "--password-stdin"], "long enough pw\n",
     "belongs to an entity"),
])
def test_errors_are_one_line(env, args, stdin, message):
    result = runner.invoke(cli.app, args, input=stdin)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_a_terminal_is_asked_twice(monkeypatch: pytest.MonkeyPatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    answers = iter(["first secret one", "second secret"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(cli.TansiqError, match="differ"):
        cli._password(False)
    answers = iter(["same secret text", "same secret text"])
    assert cli._password(False) == "same secret text"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch_with_a_reminder_due_in_a_second(db: Database) -> None:
    """A directive on the deadline model whose reminder (an hour before the deadline) is due a second after
    launch: not fired by the launch itself, only by a timer worker."""
    with db.transaction() as session:
        process_models.deploy(session, read_model("deadline.bpmn"), "deadline.bpmn", "tester")
        seasons.create_season(session, 1447, date(2000, 1, 1), date(2099, 12, 31))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
        directives.create(session, NewDirective(title="t", kind="decision", responsible_entity="housing",
                                                deadline="PT1H1S", process_model_key="deadline"), "tester",
                          launch_now=True)


def test_serve_runs_the_api_and_the_timer_worker_and_stops_cleanly(env, db: Database):
    _launch_with_a_reminder_due_in_a_second(db)
    with _serving(env, TANSIQ_TIMER_POLL_SECONDS="0.2") as served:
        assert httpx.get(f"{served.base}/healthz", timeout=2).status_code == 200
        for _ in range(100):
            with db.reading() as session:
                if session.scalar(select(func.count()).select_from(Notification)):
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the timer worker did not fire the reminder")
        assert httpx.get(f"{served.base}/api/v1/me", timeout=5).status_code == 401
    assert served.process.returncode == 0, served.stderr
    assert "Tansiq API stopped" in served.stderr and "Traceback" not in served.stderr, served.stderr


def test_serve_with_two_processes_and_its_workers_apart(env, db: Database):
    """`--workers 2` answers from two processes sharing the port; `--no-timers --no-notifications` leaves a
    due reminder unfired and the outbox as it is (those run as services of their own)."""
    from engine.work.notifications import Delivery

    _launch_with_a_reminder_due_in_a_second(db)
    with _serving(env, "--workers", "2", "--no-timers", "--no-notifications", ready="/readyz") as served:
        workers = _children(served.process.pid)
        assert len(workers) >= 2, workers  # uvicorn's supervisor and its two API processes
        assert all(httpx.get(f"{served.base}/api/v1/me", timeout=5).status_code == 401 for _ in range(20))
        time.sleep(2.5)  # the reminder is due; a timer worker polling every 0.2 s would have fired it by now
        with db.reading() as session:
            assert session.scalar(select(func.count()).select_from(ProcessInstance)
                                  .where(ProcessInstance.next_timer_at < clock.now())) == 1
            assert session.scalar(select(func.count()).select_from(Notification)) == 0
            assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert served.process.returncode == 0, served.stderr
    assert "2 API processes" in served.stderr and "also here: nothing else" in served.stderr, served.stderr
    assert "Tansiq API stopped" in served.stderr and "Traceback" not in served.stderr, served.stderr


def _children(pid: int) -> list[int]:
    """The processes `pid` started that run Python (multiprocessing's spawned workers; not its resource
    tracker, which is one too, hence >=)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    return [int(child) for child in found]


@dataclass
class Served:
    base: str
    process: subprocess.Popen[str]
    stderr: str = ""  # what the server wrote, once it has stopped


@contextmanager
def _serving(env: dict[str, str], *flags: str, ready: str = "/healthz", **extra: str) -> Iterator[Served]:
    """`tansiq serve` on a free loopback port until the block ends, then stopped with SIGTERM."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import app; app()", "serve", "--port", str(port), "--no-reports", *flags],
        env={**os.environ, **env, **extra}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = Served(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{served.base}{ready}", timeout=2).status_code == 200:
                    break
                time.sleep(0.1)
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()
                time.sleep(0.1)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, served.stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


@pytest.mark.parametrize(("trusted", "separate"), [("127.0.0.1", True), ("127.0.0.2", False)])
def test_behind_a_trusted_proxy_the_throttle_counts_by_the_forwarded_address(env, db: Database, trusted: str,
                                                                             separate: bool):
    """X-Forwarded-For is believed only from TANSIQ_TRUSTED_PROXIES: from them, a guesser's address is its
    own; from anyone else the header is ignored (a client cannot pick the address it is counted under)."""
    with db.transaction() as session:
        users.create_user(session, "secretariat", "a long enough password", "secretariat")
    with _serving(env, "--no-timers", TANSIQ_TRUSTED_PROXIES=trusted) as served:
        def sign_in(address: str, password: str) -> int:
            return httpx.post(f"{served.base}/api/v1/auth/token",
                              data={"username": "secretariat", "password": password},
                              headers={"X-Forwarded-For": address}, timeout=10).status_code

        assert [sign_in("127.0.0.9", "wrong guess") for _ in range(MAX_FAILURES)] == [401] * MAX_FAILURES
        assert sign_in("127.0.0.9", "a long enough password") == 429
        assert sign_in("127.0.0.10", "a long enough password") == (200 if separate else 429)
    with db.reading() as session:
        clients = set(session.scalars(select(LoginAttempt.client)))
    assert clients == ({"127.0.0.9", "127.0.0.10"} if separate else {"127.0.0.1"})


def test_serve_refuses_a_database_that_is_not_migrated(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TANSIQ_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    get_api_settings.cache_clear()
    result = runner.invoke(cli.app, ["serve", "--no-reports", "--no-timers"])
    assert result.exit_code == 1 and "tansiq db upgrade" in result.output


@pytest.mark.parametrize("command", [["timers", "run"], ["notifications", "run"]])
def test_long_running_workers_settle_their_heap_before_they_loop(env, monkeypatch: pytest.MonkeyPatch, command):
    calls = []
    monkeypatch.setattr(cli.heap, "settle", lambda: calls.append("settle"))
    monkeypatch.setattr(cli.timers, "run_forever", lambda *args, **kwargs: calls.append("loop"))
    monkeypatch.setattr(cli.notification_delivery, "run_forever", lambda *args, **kwargs: calls.append("loop"))
    result = runner.invoke(cli.app, command)
    assert result.exit_code == 0, result.output
    assert calls == ["settle", "loop"]


def test_db_recount_counts_the_dashboard_totals_again(env, db: Database):
    with db.transaction() as session:
        seasons.create_season(session, 1447, date(2026, 4, 18), date(2026, 7, 16))
        entities.create_entity(session, "housing", "الإسكان", "Housing")
        process_models.deploy(session, read_model("two-steps.bpmn"), "two-steps.bpmn", "tester")
        directives.create(session, NewDirective(title="تجهيز مراكز الاستقبال", kind="directive",
                                                responsible_entity="housing", deadline="P10D",
                                                process_model_key="two_steps", season_year=1447),
                          "secretariat", launch_now=True)
    with db.transaction() as session:
        session.execute(Tally.__table__.update().values(active=7))  # a total changed by hand
    result = CliRunner().invoke(cli.app, ["db", "recount"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "dashboard totals counted again: 1 rows (season, entity, track)"
    with db.reading() as session:
        assert [t.active for t in session.scalars(select(Tally))] == [1]


# --- the operations view from the command line (issue 20) ----------------------------------------------------

def _failed_report(db: Database, **data) -> int:
    from engine.work import instances
    from engine.work.work_items import WorkItem

    with db.transaction() as session:
        if process_models.latest_version(session, "incident_bad_data") is None:
            process_models.deploy(session, read_model("incident-bad-data.bpmn"), "incident-bad-data.bpmn", "t")
        instance_id = instances.start(session, "incident_bad_data", {"elapsed_days": 4, **data}, "t").id
        item = session.scalar(select(WorkItem).where(WorkItem.instance_id == instance_id))
        instances.complete_task(session, item.id, {"percent": 0}, "housing.user")
    return instance_id


def _status(db: Database, instance_id: int) -> str:
    with db.reading() as session:
        return session.get(ProcessInstance, instance_id).status


def test_an_incident_is_retried_with_corrected_variables_then_a_message_ends_it(env, db: Database):
    instance_id = _failed_report(db)
    result = runner.invoke(cli.app, ["instances", "retry", str(instance_id), "--variables", '{"percent": 5'])
    assert result.exit_code == 1 and result.output.startswith("error: --variables is not JSON"), result.output
    result = runner.invoke(cli.app, ["instances", "retry", str(instance_id), "--variables",
                                     '{"elapsed_days": 4, "percent": "x"}'])
    assert result.exit_code == 1 and "what its step's form accepts" in result.output, result.output
    result = runner.invoke(cli.app, ["instances", "retry", str(instance_id), "--by", "ops.admin", "--variables",
                                     '{"elapsed_days": 4, "percent": 40}'])
    assert result.exit_code == 0 and result.output.strip() == f"instance {instance_id}: running", result.output
    result = runner.invoke(cli.app, ["messages", "send", "no_such_message"])
    assert result.exit_code == 1 and "no running instance waits" in result.output
    result = runner.invoke(cli.app, ["messages", "send", "progress_checked", "--payload", '{"by": "officer"}'])
    assert result.exit_code == 0 and result.output.strip() == f"instance {instance_id}: completed", result.output
    assert _status(db, instance_id) == "completed"


def test_a_message_picks_its_instance_by_correlation_values(env, db: Database):
    from engine.work import incidents

    ids = {}
    for entity in ("housing", "transport"):
        ids[entity] = _failed_report(db, entity=entity)
        with db.transaction() as session:
            incidents.retry_with_variables(session, ids[entity], {"elapsed_days": 4, "percent": 50,
                                                                  "entity": entity}, "t")
    result = runner.invoke(cli.app, ["messages", "send", "progress_checked"])
    assert result.exit_code == 1 and "2 instances wait" in result.output
    result = runner.invoke(cli.app, ["messages", "send", "progress_checked",
                                     "--correlation", '{"entity": "transport"}'])
    assert result.exit_code == 0 and result.output.strip() == f"instance {ids['transport']}: completed"
    assert _status(db, ids["housing"]) == "running"


def test_instances_migrate_with_a_dry_run(env, db: Database):
    from tests.model_changes import with_step_before_every_end

    with db.transaction() as session:
        process_models.deploy(session, read_model("two-steps.bpmn"), "two-steps.bpmn", "t")
    from engine.work import instances

    with db.transaction() as session:
        instance_id = instances.start(session, "two_steps", {"responsible_entity": "housing"}, "t").id
        process_models.deploy(session, with_step_before_every_end(read_model("two-steps.bpmn")), "v2.bpmn", "t")
    dry = runner.invoke(cli.app, ["instances", "migrate", "two_steps", "1", "2", "--dry-run"])
    assert dry.exit_code == 0 and "move" in dry.output and str(instance_id) in dry.output, dry.output
    with db.reading() as session:
        assert session.get(ProcessInstance, instance_id).model.version == 1
    done = runner.invoke(cli.app, ["instances", "migrate", "two_steps", "1", "2", "--by", "ops.admin"])
    assert done.exit_code == 0 and "moved" in done.output, done.output
    with db.reading() as session:
        assert session.get(ProcessInstance, instance_id).model.version == 2
    refused = runner.invoke(cli.app, ["instances", "migrate", "two_steps", "2", "1"])
    assert refused.exit_code == 1 and refused.output.startswith("error: ") and "newer" in refused.output
