"""The `tansiq` command line. Errors are one line on stderr and a non-zero exit; nothing changes."""

from __future__ import annotations

import functools
import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypedDict

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from engine.bpmn import decision_tables, process_models
from engine.calendar import durations
from engine.calendar.business_calendar import parse_day
from engine.delivery import notification_delivery
from engine.directives import directives, tallies
from engine.foundation import clock, heap
from engine.foundation.errors import TansiqError
from engine.foundation.logs import configure_logging
from engine.foundation.settings import get_settings
from engine.storage import audit
from engine.storage.db import Database, get_database
from engine.system import backup, demo, migrate
from engine.work import incidents, instances, timers

if TYPE_CHECKING:
    from typer import _click  # the click typer vendors: TyperGroup's methods take its Context
    from typer.models import CommandInfo

    from api.settings import ApiSettings
    from engine.reports.runs import ReportRun
    from workflows.serve import EmbeddedReports

# Free strings that are really choices are Literal types: a wrong value is Typer's usage error naming them.
# Each names the engine's own tuple of values (tests/test_cli_help.py checks they agree).
Language = Literal["ar", "en"]  # users.LANGUAGES
ReportKind = Literal["daily", "periodic", "seasonal"]  # reports.common.KINDS
InstanceStatus = Literal["running", "completed", "cancelled", "incident"]  # instances.STATUSES
DirectiveStatus = Literal["draft", "active", "completed", "cancelled"]  # directives.STATUSES
EntityKind = Literal["service", "government", "operator", "private", "other"]  # entities.KINDS
ImportMode = Literal["all_or_nothing", "valid_rows"]  # directive_import.MODES
FeedbackService = Literal["housing", "transport", "reception", "departure", "other"]  # feedback.SERVICES
FeedbackStatus = Literal["new", "reviewed", "raised", "dismissed"]  # feedback.STATUSES
REPORT_FORMATS = ("pdf", "html", "xlsx", "csv", "json")


def _choices(*allowed: str):
    """A parser for an option that takes choices repeated or comma-separated (`--format pdf,xlsx`)."""

    def parse(value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        wrong = [part for part in parts if part not in allowed]
        if wrong or not parts:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)} (or several, comma-separated)")
        return ",".join(parts)

    return parse


class Arranged(TyperGroup):
    """The top-level commands in the order of `PANELS` (the help's panels follow it), not in the order the
    modules happen to register them."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        order = {name: index for index, name in enumerate(name for names in PANELS.values() for name in names)}
        return sorted(super().list_commands(ctx), key=lambda name: order.get(name, len(order)))


app = typer.Typer(
    cls=Arranged, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Tansiq: follow-up of committee directives.",
)
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
models_app = typer.Typer(no_args_is_help=True, help="BPMN process models.")
instances_app = typer.Typer(no_args_is_help=True, help="Running process instances.")
timers_app = typer.Typer(no_args_is_help=True, help="The timer worker (reminders, deadlines, escalations).")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")
demo_app = typer.Typer(no_args_is_help=True, help="The demo season.")
directives_app = typer.Typer(no_args_is_help=True, help="Directives (توجيهات).")
notifications_app = typer.Typer(no_args_is_help=True, help="Email and in-app notifications.")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(instances_app, name="instances")
app.add_typer(timers_app, name="timers")
app.add_typer(audit_app, name="audit")
app.add_typer(demo_app, name="demo")
app.add_typer(directives_app, name="directives")
app.add_typer(notifications_app, name="notifications")

console = Console()
SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "bpmn"


def _print_version(value: bool) -> None:
    if value:
        from engine.foundation.version import installed_version

        typer.echo(f"tansiq {installed_version()}")
        raise typer.Exit()


@app.callback()
def _setup(
    context: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version (pyproject.toml's, as installed) and exit; needs no settings or database.")] = False,
) -> None:
    if context.invoked_subcommand == "settings":  # `tansiq settings check` names every bad setting itself
        return
    with _one_line_errors():
        settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except TansiqError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValidationError as exc:
        from api.settings_reference import is_settings_error, problems_of

        if is_settings_error(exc):  # a TANSIQ_* variable with a bad value
            typer.echo(f"error: bad setting {'; '.join(problems_of(exc))}", err=True)
        else:
            typer.echo("error: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
                       err=True)
        raise typer.Exit(1) from None
    except OperationalError as exc:
        typer.echo(f"error: the database cannot be used ({exc.orig}); is it up, and was `tansiq db upgrade` run?",
                   err=True)
        raise typer.Exit(1) from None


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    return durations.parse_moment(value)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to the newest revision."""
    url = get_settings().effective_database_url
    migrate.upgrade(url)
    typer.echo(f"database at revision {migrate.current_revision(url)}")


@db_app.command("recount")
def db_recount() -> None:
    """Count the dashboard's running totals again from the directives, steps and escalations (they are kept
    with every change; this is for a database changed by hand)."""
    with _one_line_errors(), get_database().transaction() as session:
        rows = tallies.recount(session.connection())
    typer.echo(f"dashboard totals counted again: {rows} rows (season, entity, track)")


@models_app.command("deploy")
def models_deploy(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    by: Annotated[str, typer.Option(help="Who deploys (recorded).")] = "cli",
) -> None:
    """Validate and deploy BPMN models and DMN decision tables (.dmn files first, so that the models' business
    rule tasks find them); identical content is the same version. All or nothing."""
    db = get_database()
    ordered = sorted(files, key=lambda path: path.suffix.lower() != ".dmn")
    lines = []
    row: decision_tables.DecisionTable | process_models.ProcessModel
    with _one_line_errors(), db.transaction() as session:
        for path in ordered:
            if path.suffix.lower() == ".dmn":
                decision = decision_tables.deploy(session, path.read_bytes(), path.name, by)
                row, created = decision.decision, decision.created
            else:
                model = process_models.deploy(session, path.read_bytes(), path.name, by)
                row, created = model.model, model.created
            lines.append(f"{'deployed' if created else 'unchanged'}: {row.key} version {row.version} ({row.filename})")
    typer.echo("\n".join(lines))


@models_app.command("list")
def models_list() -> None:
    """The newest version of every deployed model."""
    with _one_line_errors(), get_database().reading() as session:
        table = Table("key", "version", "name", "deployed at", "by")
        for model in process_models.list_models(session):
            table.add_row(model.key, str(model.version), model.name, model.deployed_at.isoformat(), model.deployed_by)
    console.print(table)


@instances_app.command("start")
def instances_start(
    key: str,
    data: Annotated[str, typer.Option(help="Process data as a JSON object.")] = "{}",
    by: Annotated[str, typer.Option(help="Who starts it (recorded).")] = "cli",
    business_key: Annotated[str | None, typer.Option(help="A reference, e.g. a directive's.")] = None,
) -> None:
    """Start an instance of the newest version of a model."""
    try:
        variables = json.loads(data)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --data is not JSON: {exc.msg} at column {exc.colno}", err=True)
        raise typer.Exit(1) from None
    with _one_line_errors(), get_database().transaction() as session:
        instance = instances.start(session, key, variables, by, business_key=business_key)
    typer.echo(f"instance {instance.id}: {instance.status}")


@instances_app.command("list")
def instances_list(
    status: Annotated[InstanceStatus | None,
                      typer.Option(help="Only instances with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Instances, newest first; `--status incident` lists what needs an administrator."""
    with _one_line_errors(), get_database().reading() as session:
        rows = instances.list_instances(session, status=status, limit=limit)
        table = Table("id", "model", "version", "business key", "status", "next timer", "incident")
        for row in rows:
            incident = f"{row.incident_element}: {row.incident_message}" if row.incident_message else ""
            next_timer = row.next_timer_at.isoformat() if row.next_timer_at else ""
            table.add_row(str(row.id), row.model.key, str(row.model.version), row.business_key or "", row.status,
                          next_timer, incident[:120])
    console.print(table)


@instances_app.command("retry")
def instances_retry(
    instance_id: int,
    by: str = "cli",
    variables: Annotated[str | None, typer.Option(
        help="The corrected variables, a JSON object, whole (a variable left out is removed); kept only if the "
             "retry gets past the failure.")] = None,
) -> None:
    """Run an instance in incident again from its last clean point, as it is or with corrected variables."""
    from api.cli_operations import json_object

    with _one_line_errors():
        corrected = json_object("--variables", variables)
        with get_database().transaction() as session:
            if corrected is None:
                instance = instances.retry(session, instance_id, by)
            else:
                instance = incidents.retry_with_variables(session, instance_id, corrected, by)
            status = instance.status
    typer.echo(f"instance {instance_id}: {status}")


@instances_app.command("cancel")
def instances_cancel(
    instance_id: Annotated[int, typer.Argument(help="The instance's id.")],
    by: Annotated[str, typer.Option(help="Who cancels (recorded).")] = "cli",
) -> None:
    """Cancel a running or in-incident instance: its open steps close, its timers stop (audited)."""
    with _one_line_errors(), get_database().transaction() as session:
        instance = instances.cancel(session, instance_id, by)
    typer.echo(f"instance {instance.id}: {instance.status}")


@timers_app.command("run")
def timers_run(
    once: Annotated[bool, typer.Option("--once", help="Process what is due, then stop.")] = False,
    now: Annotated[str | None, typer.Option(help="Act as if it were this moment (ISO 8601).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, max=10_000, help="Instances per transaction.")] = None,
) -> None:
    """Fire due timers: once, or as a long-running worker."""
    settings = get_settings()
    with _one_line_errors():
        moment = _parse_now(now)
    if moment is not None:
        clock.set_now(moment)
    db = get_database()
    size = batch_size or settings.timer_batch_size
    if once:
        result = timers.run_until_idle(db, size)
        typer.echo(f"fired {result.fired}, incidents {len(result.incidents)}")
        return
    heap.settle()
    typer.echo("timer worker running; Ctrl+C to stop")
    timers.run_forever(db, size, settings.timer_poll_seconds)  # until SIGTERM or Ctrl+C
    typer.echo("timer worker stopped")


@app.command("backup")
def backup_command(target: Annotated[Path, typer.Argument(help="A new file to write.")]) -> None:
    """Write the whole database and every file kept on disk to one archive while Tansiq runs (SQLite online
    backup; pg_dump), with a manifest of every member's SHA-256."""
    from engine.reports.settings import get_report_settings

    settings = get_settings()
    with _one_line_errors():
        written = backup.backup(settings.effective_database_url, target, home=settings.home,
                                reports=get_report_settings().archive_dir)
    typer.echo(f"backed up to {written} ({written.stat().st_size:,} bytes)")


@app.command("restore")
def restore_command(
    source: Annotated[Path, typer.Argument(help="A file written by `tansiq backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Replace the database's content without asking.")] = False,
) -> None:
    """Replace the database's content and the files on disk with a backup (stop the workers first); every
    checksum is checked before anything is replaced."""
    if not yes:
        typer.echo("error: restoring replaces everything in the database; repeat with --yes", err=True)
        raise typer.Exit(1)
    from engine.reports.settings import get_report_settings

    settings = get_settings()
    with _one_line_errors():
        backup.restore(settings.effective_database_url, source, home=settings.home,
                       reports=get_report_settings().archive_dir)
    typer.echo(f"restored from {source}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the whole hash chain; exit 1 and name the first broken event if it does not hold."""
    with _one_line_errors(), get_database().reading() as session:
        result = audit.verify(session)
    if not result.ok:
        typer.echo(f"error: {result}", err=True)
        raise typer.Exit(1)
    typer.echo(str(result))


@directives_app.command("list")
def directives_list(
    status: Annotated[DirectiveStatus | None,
                      typer.Option(help="Only directives with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """The directive register, newest first."""
    with _one_line_errors(), get_database().reading() as session:
        rows = directives.register(session, status=status, limit=limit)
        table = Table("reference", "status", "priority", "responsible", "deadline (Riyadh)", "steps", "level")
        for row in rows:
            table.add_row(row.reference, row.status + (" (overdue)" if directives.overdue(row) else ""), row.priority,
                          row.responsible_entity.code, _riyadh(row.deadline_at), ", ".join(row.current_steps),
                          str(row.escalation_level or ""))
    console.print(table)


def _riyadh(moment: datetime) -> str:
    return moment.astimezone(durations.RIYADH).strftime("%Y-%m-%d %H:%M")


@demo_app.command("seed")
def demo_seed(days: Annotated[int, typer.Option(min=2, max=60, help="How many days of season to play.")] = 21) -> None:
    """Create and play the demo season up to now (an empty database only)."""
    db = get_database()
    with _one_line_errors():
        _seed_demo(db, days)


def _seed_demo(db: Database, days: int) -> None:
    if demo.is_seeded(db):
        raise TansiqError("the database holds data already; the demo seeds an empty one")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} h"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("playing the demo season", total=days * 24)
        credentials = demo.seed(db, SHIPPED_MODELS, days=days,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    path = get_settings().home / "demo-credentials.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{c.username}\t{c.password}\t{c.role}\t{c.entity or ''}\n" for c in credentials),
                    encoding="utf-8")
    path.chmod(0o600)
    table = Table("username", "password", "role", "entity", title="Demo users (also in " + str(path) + ")")
    for c in credentials:
        table.add_row(c.username, c.password, c.role, c.entity or "")
    console.print(table)


@notifications_app.command("run")
def notifications_run(
    once: Annotated[bool, typer.Option("--once", help="Send what is due, then stop.")] = False,
    now: Annotated[str | None, typer.Option(help="Act as if it were this moment (ISO 8601).")] = None,
) -> None:
    """Fan out new notifications and send due email (retries with backoff)."""
    with _one_line_errors():
        moment = _parse_now(now)
    if moment is not None:
        clock.set_now(moment)
    db = get_database()
    if once:
        with _one_line_errors():
            report = notification_delivery.run_once(db)
        typer.echo(f"sent {report.sent}, retrying {report.retrying}, failed {report.failed}")
        return
    heap.settle()
    typer.echo("notification worker running; Ctrl+C to stop")
    notification_delivery.run_forever(db)  # until SIGTERM or Ctrl+C
    typer.echo("notification worker stopped")


@notifications_app.command("digest")
def notifications_digest(
    day: Annotated[str | None, typer.Option(help="The day (2026-05-20 or Hijri 1447-12-03); today if none.")] = None,
) -> None:
    """Queue each entity's daily digest of open steps (once per entity and day)."""
    with _one_line_errors():
        chosen = parse_day(day) if day else notification_delivery.riyadh_today()
        with get_database().transaction() as session:
            queued = notification_delivery.daily_digest(session, chosen)
    typer.echo(f"queued {len(queued)} digests for {chosen.isoformat()}")


@notifications_app.command("status")
def notifications_status() -> None:
    """Deliveries by status."""
    with _one_line_errors(), get_database().reading() as session:
        counts = notification_delivery.delivery_counts(session)
    typer.echo(", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "no deliveries")


@notifications_app.command("requeue-failed")
def notifications_requeue_failed() -> None:
    """Try failed email again (after fixing the SMTP settings, say)."""
    with _one_line_errors(), get_database().transaction() as session:
        count = notification_delivery.requeue_failed(session)
    typer.echo(f"requeued {count}")


@app.command("run")
def run(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
) -> None:
    """Start Tansiq on the embedded default: migrate, deploy the shipped models, seed the demo season on first
    start, then serve the web UI and API with the timer, notification and report workers."""
    settings = get_settings()
    url = settings.effective_database_url
    migrate.upgrade(url)
    db = get_database(url)
    with _one_line_errors():
        if settings.demo and not demo.is_seeded(db):
            _seed_demo(db, days=21)
        with db.transaction() as session:
            deployed = process_models.deploy_directory(session, SHIPPED_MODELS, "tansiq run")
    models = sum(1 for kind, *_ in deployed if kind == "model")
    typer.echo(f"Tansiq on {url}: {models} shipped models and {len(deployed) - models} decision tables deployed; "
               f"open http://{host}:{port}/ (Ctrl+C to stop)")
    serve(host=host, port=port, workers=1, no_timers=False, no_notifications=False, no_reports=False)




# ==== reports (issue 6): `tansiq reports run | list | serve` ========================================
# One block, appended; imports are local so that `tansiq` starts without WeasyPrint or Prefect.
reports_app = typer.Typer(no_args_is_help=True, help="The daily, periodic and seasonal reports (التقارير).")
app.add_typer(reports_app, name="reports")


def _report_day(value: str | None) -> date | None:
    """A Gregorian date (2026-05-20) or a Hijri one (1447-12-03, optionally followed by هـ or AH)."""
    return None if value is None else parse_day(value)


class ReportOptions(TypedDict):
    """What `reports run` asks for: archive.produce (here) and dispatch.request_run (through Prefect) take it."""

    day: date | None
    start: date | None
    end: date | None
    season_year: int | None
    formats: list[str] | None
    languages: list[str] | None
    trigger: str
    requested_by: str


def _report_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@reports_app.command("run")
def reports_run(
    kind: Annotated[ReportKind, typer.Argument(help="Which report.")],
    on: Annotated[str | None, typer.Option("--date", help="Daily: the local day (default: yesterday).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Periodic: the first day (default: --to minus 6).")]
    = None,
    end: Annotated[str | None, typer.Option("--to", help="Periodic: the last day (default: yesterday).")] = None,
    season: Annotated[int | None, typer.Option(help="The season's Hijri year (seasonal: default, yesterday's).")]
    = None,
    formats: Annotated[list[str] | None, typer.Option(
        "--format", parser=_choices(*REPORT_FORMATS), metavar="<" + "|".join(REPORT_FORMATS) + ">",
        help="Repeat or comma-separate (default TANSIQ_REPORTS_FORMATS).")] = None,
    languages: Annotated[list[str] | None, typer.Option(
        "--lang", parser=_choices("ar", "en"), metavar="<ar|en>",
        help="Repeat or comma-separate (default TANSIQ_REPORTS_LANGUAGES).")] = None,
    now: Annotated[str | None, typer.Option(help="Act as if it were this moment (ISO 8601); implies --here.")]
    = None,
    by: Annotated[str, typer.Option(help="Who asks (recorded).")] = "cli",
    here: Annotated[bool, typer.Option("--here", help="Make it in this process even when a Prefect API is "
                                                      "configured (TANSIQ_PREFECT_API_URL).")] = False,
    wait: Annotated[int, typer.Option(min=0, max=7200, help="Through Prefect: seconds to wait for the run to "
                                                            "finish (0: print the queued run and return).")] = 900,
) -> None:
    """Make one report now and print the archived files: through the Prefect deployment when a Prefect API is
    configured (the run shows in Prefect's UI), in this process otherwise."""
    from engine.reports import archive, runs
    from workflows import dispatch

    db = get_database()
    with _one_line_errors():
        options: ReportOptions = {"day": _report_day(on), "start": _report_day(start), "end": _report_day(end),
                                   "season_year": season, "formats": _report_list(formats),
                                   "languages": _report_list(languages), "trigger": "cli", "requested_by": by}
        moment = _parse_now(now)
        if moment is not None:
            clock.set_now(moment)
        if here or moment is not None or not get_settings().prefect_api_url:
            run = archive.produce(db, kind, **options).run
        else:
            run = dispatch.request_run(db, kind, **options)
            if run.status == runs.QUEUED:
                typer.echo(f"report run {run.id} queued as Prefect flow run {run.prefect_flow_run_id}", err=True)
                run = _wait_for_run(db, run.id, wait)
    typer.echo(f"report run {run.id}: {run.kind} {run.period_start}..{run.period_end} {run.status}", err=True)
    if run.status == runs.FAILED:
        typer.echo(f"error: {run.error}", err=True)
        raise typer.Exit(1)
    for entry in run.files or []:  # the file's name, then where any node serves it
        name = entry.get("name") or entry["path"].rsplit("/", 1)[-1]
        language = f"?language={entry['language']}" if entry.get("language") else ""
        typer.echo(f"{name}\t/api/v1/reports/{run.id}/{entry['format']}{language}")


def _wait_for_run(db: Database, run_id: int, seconds: int) -> ReportRun:
    import time

    from engine.reports import runs

    deadline = time.monotonic() + seconds
    while True:
        with db.reading() as session:
            run = runs.get(session, run_id)
        if run.status in (runs.SUCCEEDED, runs.FAILED) or time.monotonic() >= deadline:
            return run
        time.sleep(1)


@reports_app.command("list")
def reports_list(
    kind: Annotated[ReportKind | None, typer.Option(help="Only runs of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """Report runs, newest first."""
    from engine.reports import runs

    with _one_line_errors(), get_database().reading() as session:
        rows = runs.list_runs(session, kind=kind, limit=limit)
        table = Table("id", "kind", "period", "status", "trigger", "started", "files", "prefect flow run")
        for row in rows:
            period = str(row.period_start) if row.period_start == row.period_end else (
                f"{row.period_start}..{row.period_end}")
            table.add_row(str(row.id), row.kind, period, row.status + (f": {row.error[:60]}" if row.error else ""),
                          row.trigger, _riyadh(row.started_at), str(len(row.files or [])),
                          row.prefect_flow_run_id or "")
    console.print(table)


@reports_app.command("serve")
def reports_serve(
    port: Annotated[int | None, typer.Option(help="The Prefect API's port on 127.0.0.1 (default: "
                                                  "TANSIQ_PREFECT_PORT, 4200).")] = None,
    api_url: Annotated[str | None, typer.Option(help="Use this Prefect API instead of starting one (default: "
                                                     "TANSIQ_PREFECT_API_URL).")] = None,
    timezone: Annotated[str | None, typer.Option(help="The schedules' time zone (default Asia/Riyadh).")] = None,
    ui: Annotated[bool, typer.Option(help="Serve Prefect's UI beside its API.")] = True,
) -> None:
    """Host a Prefect API and serve the report and daily-digest deployments on their cron schedules; prints the
    Prefect UI's address (Ctrl+C or SIGTERM to stop)."""
    from workflows.serve import serve_forever

    with _one_line_errors():
        try:
            serve_forever(port=port, api_url=api_url or get_settings().prefect_api_url, timezone=timezone, ui=ui)
        except (RuntimeError, TimeoutError) as exc:
            raise TansiqError(str(exc)) from None


@reports_app.command("deploy")
def reports_deploy(
    pool: Annotated[str, typer.Option(help="The `process` work pool (created when missing).")] = "tansiq-reports",
    api_url: Annotated[str | None, typer.Option(help="The Prefect API (default: TANSIQ_PREFECT_API_URL).")] = None,
) -> None:
    """Register the report and daily-digest deployments, with their cron schedules, on a work pool of a Prefect
    server, for `prefect worker start --pool POOL` on any machine. Idempotent: run it at every upgrade."""
    from workflows.serve import deploy_to_pool

    target = api_url or get_settings().prefect_api_url
    with _one_line_errors():
        if not target:
            raise TansiqError("no Prefect API: set TANSIQ_PREFECT_API_URL or give --api-url")
        try:
            names = deploy_to_pool(target, pool)
        except (RuntimeError, TimeoutError) as exc:
            raise TansiqError(str(exc)) from None
    for name in names:
        typer.echo(f"deployed {name} on work pool {pool}")
# ==== end of reports ================================================================================


# ==== REST API (issue 4): `tansiq entities create`, `tansiq users create`, `tansiq serve` ============
# One block, appended; the web imports are local so that other commands start without them.
entities_app = typer.Typer(no_args_is_help=True, help="Entities (الجهات) that execute directives.")
users_app = typer.Typer(no_args_is_help=True, help="Users and their roles.")
app.add_typer(entities_app, name="entities")
app.add_typer(users_app, name="users")


@entities_app.command("create")
def entities_create(
    code: Annotated[str, typer.Option("--code", help="Lowercase code, e.g. housing.")],
    name_ar: Annotated[str, typer.Option("--name-ar", help="The Arabic name.")],
    name_en: Annotated[str, typer.Option("--name-en", help="The English name.")],
    kind: Annotated[EntityKind,
                    typer.Option(help="The entity's kind.")] = "service",
    email: Annotated[str | None, typer.Option(help="Where the entity's notices go.")] = None,
    by: Annotated[str, typer.Option(help="Who creates it (recorded).")] = "cli",
) -> None:
    """Create an entity."""
    from engine.people import entities

    with _one_line_errors(), get_database().transaction() as session:
        entities.create_entity(session, code, name_ar, name_en, kind, email, actor=by)
    typer.echo(f"entity {code} created")


def _password(from_stdin: bool) -> str:
    """--password-stdin or a pipe: one line of standard input; a terminal: asked twice, not echoed."""
    import getpass

    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise TansiqError("the two passwords differ")
    if not password:
        raise TansiqError("no password given (pipe it in, or use a terminal to be asked)")
    return password


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option("--username", help="2-60 lowercase letters, digits, . _ -")],
    role: Annotated[str, typer.Option("--role", help="admin, secretariat, follow_up_officer, supervisor, "
                                                     "entity_user, leadership or viewer.")],
    entity: Annotated[str | None, typer.Option("--entity", help="The entity's code (entity users).")] = None,
    full_name: Annotated[str, typer.Option("--full-name")] = "",
    email: Annotated[str | None, typer.Option("--email")] = None,
    language: Annotated[Language, typer.Option("--language", help="The user's language.")] = "ar",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]
    = False,
    by: Annotated[str, typer.Option(help="Who creates it (recorded).")] = "cli",
) -> None:
    """Create a user; the password is asked twice on a terminal, else read from standard input."""
    from engine.people import users

    with _one_line_errors():
        password = _password(password_stdin)
        with get_database().transaction() as session:
            users.create_user(session, username, password, role, full_name=full_name, email=email,
                              entity_code=entity, language=language, actor=by)
    typer.echo(f"user {username} created ({role}{', ' + entity if entity else ''})")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API processes sharing the port (each answers any "
                                                              "request: nothing is kept in one process).")] = 1,
    no_timers: Annotated[bool, typer.Option("--no-timers", help="Do not run the timer worker here "
                                                                 "(`tansiq timers run` is its own service).")] = False,
    no_notifications: Annotated[bool, typer.Option(
        "--no-notifications", help="Do not run the notification worker here (`tansiq notifications run`).")] = False,
    no_reports: Annotated[bool, typer.Option("--no-reports", help="Do not serve the scheduled reports here "
                                                                   "(`tansiq reports serve`, or a Prefect worker).")]
    = False,
) -> None:
    """Serve the web UI and REST API (docs at /api/docs), with the timer, notification and report workers beside
    it unless they run as services of their own."""
    from api.settings import get_api_settings
    from engine.system import migrate

    settings = get_api_settings()
    url = settings.effective_database_url
    with _one_line_errors():
        if migrate.current_revision(url) != migrate.head_revision():
            raise TansiqError("the database schema is not current; run `tansiq db upgrade` first")
    reports = None if no_reports else _start_reports(settings)
    if reports is not None:
        settings = get_api_settings()  # now with the report scheduler's TANSIQ_PREFECT_API_URL
    db = get_database(url)
    stop = threading.Event()
    workers_here = _start_workers(db, settings, stop, timers_on=not no_timers, notifications_on=not no_notifications)
    roles = [name for name, on in (("timers", not no_timers), ("notifications", not no_notifications),
                                   ("reports", reports is not None)) if on]
    typer.echo(f"Tansiq on http://{host}:{port}/ ({workers} API process{'es' if workers > 1 else ''}; "
               f"API at /api/v1, docs at /api/docs); also here: {', '.join(roles) or 'nothing else'}", err=True)
    if reports is not None:
        typer.echo(f"Prefect UI at {reports.ui_url} (report runs and their artifacts)", err=True)
    try:
        _run_uvicorn(settings, host, port, workers, stop)
    finally:
        stop.set()
        for thread in workers_here:
            thread.join(timeout=30)
        if reports is not None:
            reports.stop()
        typer.echo("Tansiq API stopped", err=True)


def _start_reports(settings: ApiSettings) -> EmbeddedReports | None:
    """The report scheduler beside the API: the embedded Prefect server on TANSIQ_PREFECT_PORT (or the Prefect API
    of TANSIQ_PREFECT_API_URL) serving the report deployments. API processes learn its address from the
    environment, so their "run now" goes through it."""
    import os

    try:
        from workflows.serve import start_embedded

        reports = start_embedded(port=settings.prefect_port, api_url=settings.prefect_api_url)
    except Exception as exc:  # the API serves on without scheduled reports; say so
        typer.echo(f"warning: scheduled reports are not running ({exc}); `tansiq reports serve` runs them", err=True)
        return None
    os.environ["TANSIQ_PREFECT_API_URL"] = reports.api_url
    _forget_settings()
    return reports


def _forget_settings() -> None:
    from api.settings import get_api_settings

    get_settings.cache_clear()
    get_api_settings.cache_clear()


def _start_workers(db: Database, settings: ApiSettings, stop: threading.Event, *, timers_on: bool,
                   notifications_on: bool) -> list[threading.Thread]:
    started = []
    if timers_on:
        started.append(threading.Thread(target=timers.run_forever, name="tansiq-timers", daemon=True,
                                        args=(db, settings.timer_batch_size, settings.timer_poll_seconds, stop)))
    if notifications_on:
        started.append(threading.Thread(target=notification_delivery.run_forever, name="tansiq-notifications",
                                        daemon=True, kwargs={"db": db, "stop": stop}))
    for thread in started:
        thread.start()
    return started


def _run_uvicorn(settings: ApiSettings, host: str, port: int, workers: int, stop: threading.Event) -> None:
    """One API process here, or `workers` processes started by uvicorn's supervisor (each builds its own app from
    the same TANSIQ_* environment; a worker that dies is replaced)."""
    import signal

    import uvicorn

    from api import metrics
    from engine.foundation.logs import uvicorn_log_config

    run = functools.partial(uvicorn.run, host=host, port=port, server_header=False,
                            log_level=settings.log_level.lower(),
                            log_config=uvicorn_log_config(settings.log_level, settings.log_format),
                            proxy_headers=bool(settings.trusted_proxies),
                            forwarded_allow_ips=settings.trusted_proxies or None)
    if workers > 1:
        metrics.prepare_multiprocess(settings.home / "metrics" / f"serve-{port}")
        run("api.app:create_app", factory=True, workers=workers)
        return
    from api.app import create_app

    with _one_line_errors():
        application = create_app(settings)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then raises the signal again with the handlers it
    # found: ours only set `stop`, so the workers finish their batch and the process exits cleanly.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run(application)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ==== end of REST API ===============================================================================


# ==== meetings, Excel import, pilgrim feedback, obstacles (issue 9) ==================================
# One block, appended; the engine modules are imported where used. The CLI acts with full access.
meetings_app = typer.Typer(no_args_is_help=True, help="Committee meetings (الاجتماعات) and their recommendations.")
feedback_app = typer.Typer(no_args_is_help=True, help="Pilgrim feedback (رأي الحاج).")
app.add_typer(meetings_app, name="meetings")
app.add_typer(feedback_app, name="feedback")
_STAGES = {"read": "reading the workbook", "validate": "validating rows", "import": "importing",
           "launch": "launching"}


class _CliActor:
    """The command line's user for engine functions that narrow by access: sees everything."""

    def __init__(self, username: str) -> None:
        self.username, self.role, self.entity_id, self.active = username, "admin", None, True


@directives_app.command("template")
def directives_template(
    out: Annotated[Path, typer.Argument(dir_okay=False, help="Where to write the workbook (.xlsx).")],
    lang: Annotated[Language, typer.Option(help="The language of the drop-down lists.")] = "ar",
) -> None:
    """Write the Excel template for importing directives (Arabic and English headers, drop-down lists)."""
    from engine.directives import directive_import

    with _one_line_errors(), get_database().reading() as session:
        content = directive_import.template(session, lang)
    out.write_bytes(content)
    typer.echo(f"template written to {out}")


@directives_app.command("import")
def directives_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The workbook (.xlsx).")],
    mode: Annotated[ImportMode, typer.Option(
        help="all_or_nothing: any bad row imports none; valid_rows: the valid rows are imported.")]
    = "all_or_nothing",
    launch: Annotated[bool, typer.Option("--launch", help="Launch each imported directive.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only validate; store nothing.")] = False,
    season: Annotated[int | None, typer.Option(help="The season's Hijri year (default: today's).")] = None,
    by: Annotated[str, typer.Option(help="Who imports (recorded).")] = "cli",
    show: Annotated[int, typer.Option(min=0, max=100_000, help="How many problems to list.")] = 50,
) -> None:
    """Validate every row of a workbook, then import all of them or none (or the valid rows only)."""
    from engine.directives import directive_import

    data = file.read_bytes()
    with _one_line_errors(), Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total} rows"), TimeRemainingColumn(),
                                      console=console, transient=True) as bar:
        task = bar.add_task(_STAGES["read"], total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=_STAGES.get(stage, stage), completed=done, total=total or None)

        with get_database().transaction() as session:
            report = directive_import.import_directives(session, data, by, mode=mode, launch=launch,
                                                        dry_run=dry_run, season_year=season, progress=progress)
    errors = report.errors
    if errors and show:
        table = Table("row", "column", "field", "problem", title=f"{len(errors)} problem(s)")
        for error in errors[:show]:
            table.add_row(str(error.row), error.column, error.header_en or error.field, error.message)
        console.print(table)
        if len(errors) > show:
            typer.echo(f"... and {len(errors) - show} more", err=True)
    typer.echo(f"{report.total} rows: {report.valid} valid, {report.invalid} invalid; imported {report.imported}, "
               f"launched {report.launched} ({report.seconds:.1f} s)" + (" [dry run]" if dry_run else ""))
    if report.file_errors or (errors and (dry_run or report.imported == 0)):
        raise typer.Exit(1)


@meetings_app.command("list")
def meetings_list(
    season: Annotated[int | None, typer.Option(help="The season's Hijri year.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Meetings, newest first."""
    from engine.directives import meetings

    with _one_line_errors(), get_database().reading() as session:
        rows, _ = meetings.list_meetings(session, _CliActor("cli"), season_year=season, limit=limit)
        table = Table("id", "number", "date (Hijri)", "date", "title", "chair", "attending")
        for m in rows:
            table.add_row(str(m.id), str(m.number), m.held_on_hijri, m.held_on.isoformat(), m.title_ar, m.chair or "",
                          ", ".join(e.code for e in m.attendees))
    console.print(table)


@meetings_app.command("launch-all")
def meetings_launch_all(
    meeting_id: Annotated[int, typer.Argument(help="The meeting's id.")],
    by: Annotated[str, typer.Option(help="Who launches (recorded).")] = "cli",
) -> None:
    """Launch every draft directive of a meeting, all or nothing; exit 1 and list the failures otherwise."""
    from engine.directives import meetings

    with _one_line_errors(), get_database().transaction() as session:
        report = meetings.launch_all(session, meeting_id, by)
    table = Table("reference", "responsible", "outcome", "why")
    for row in report.rows:
        table.add_row(row.reference, row.responsible_entity, row.outcome, row.error or "")
    console.print(table)
    if not report.ok:
        typer.echo(f"error: nothing was launched: {len(report.failed)} of {len(report.rows)} drafts failed", err=True)
        raise typer.Exit(1)
    typer.echo(f"launched {report.launched} directives")


@meetings_app.command("agenda")
def meetings_agenda(
    meeting_id: Annotated[int, typer.Argument(help="The meeting's id.")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Where to write (.csv or .xlsx).")],
    lang: Annotated[Language, typer.Option(help="The agenda's language.")] = "ar",
) -> None:
    """Export a meeting's agenda (its directives and the open ones carried forward) as CSV or XLSX."""
    from engine.directives import meetings

    with _one_line_errors(), get_database().reading() as session:
        page = meetings.meeting_page(session, meeting_id, _CliActor("cli"))
        content = meetings.agenda_csv(page, lang) if out.suffix.lower() == ".csv" else meetings.agenda_xlsx(page, lang)
    out.write_bytes(content)
    typer.echo(f"agenda of meeting {page.meeting.number} written to {out}")


@feedback_app.command("list")
def feedback_list(
    season: Annotated[int | None, typer.Option(help="The season's Hijri year.")] = None,
    service: Annotated[FeedbackService | None,
                       typer.Option(help="Only feedback on this service.")] = None,
    status: Annotated[FeedbackStatus | None,
                      typer.Option(help="Only feedback with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Pilgrim feedback, newest first."""
    from engine import feedback

    filters = feedback.FeedbackFilters(season=season, service=service, status=status)
    with _one_line_errors(), get_database().reading() as session:
        rows, total = feedback.search(session, _CliActor("cli"), filters, limit=limit)
        table = Table("id", "received (Riyadh)", "service", "entity", "rating", "status", "tags", "text",
                      title=f"{total} item(s)")
        for item in rows:
            table.add_row(str(item.id), _riyadh(item.received_at), item.service,
                          item.entity.code if item.entity else "", str(item.rating), item.status,
                          ", ".join(t.tag for t in item.tags), item.text[:80])
    console.print(table)


@app.command("obstacles")
def obstacles_show(
    season: Annotated[int | None, typer.Option(help="The season's Hijri year (default: today's).")] = None,
    previous: Annotated[int | None, typer.Option(help="Compared with (default: the season before).")] = None,
) -> None:
    """Recurring obstacles: tags on directives and pilgrim feedback of a season and of the one before."""
    from engine.insight import obstacles

    with _one_line_errors(), get_database().reading() as session:
        view = obstacles.recurring_for_year(session, season, previous)
    table = Table("tag", str(view.season_year), str(view.previous_year or "-"), "directives", "feedback",
                  "entities", title="Recurring obstacles")
    for o in view.obstacles:
        table.add_row(o.tag, str(o.count), str(o.previous_count), str(o.directives), str(o.feedback),
                      ", ".join(e.code for e in o.entities))
    console.print(table)
# ==== end of issue 9 ================================================================================

from api.cli_files import files_app  # noqa: E402  (issue 19: shared file storage)

app.add_typer(files_app, name="files")

from api.cli_settings import settings_app  # noqa: E402  (issue 19: the settings reference)

app.add_typer(settings_app, name="settings")


from api.cli_operations import messages_app, migrate_instances  # noqa: E402  (issue 20: the operations view)

app.add_typer(messages_app, name="messages")
instances_app.command("migrate")(migrate_instances)


# ==== the help: commands in panels, and each group's commands in a sensible order ===================
PANELS: dict[str, tuple[str, ...]] = {
    "Run": ("serve", "run", "timers", "notifications"),
    "Season data": ("demo", "entities", "users", "directives", "meetings", "feedback"),
    "Reports": ("reports", "obstacles"),
    "Operations": ("db", "settings", "models", "instances", "messages", "audit", "files", "backup", "restore"),
}
SUBCOMMANDS: dict[str, tuple[str, ...]] = {  # the first use first; a command left out goes to the end
    "models": ("list", "deploy"),
    "instances": ("list", "start", "retry", "cancel", "migrate"),
    "notifications": ("run", "status", "digest", "requeue-failed"),
    "directives": ("list", "template", "import"),
    "meetings": ("list", "agenda", "launch-all"),
    "reports": ("list", "run", "serve", "deploy"),
    "files": ("verify", "move"),
    "settings": ("check", "env"),
}


def _arrange(top: typer.Typer) -> None:
    panel_of = {name: panel for panel, names in PANELS.items() for name in names}
    for command in top.registered_commands:
        command.rich_help_panel = panel_of.get(command.name or "")
    for group in top.registered_groups:
        group.rich_help_panel = panel_of.get(group.name or "")
        order = SUBCOMMANDS.get(group.name or "", ())
        if order and group.typer_instance:
            _sort_commands(group.typer_instance.registered_commands, order)


def _sort_commands(commands: list[CommandInfo], order: tuple[str, ...]) -> None:
    """In `order`; a command left out goes to the end."""
    rank = {name: index for index, name in enumerate(order)}
    commands.sort(key=lambda command: rank.get(command.name or "", len(rank)))


_arrange(app)
# ==== end of the help ===============================================================================


def main() -> None:  # pragma: no cover - console entry for `python -m api.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
