"""The `tansiq` command line. Errors are one line on stderr and a non-zero exit; nothing changes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import OperationalError

from engine import (
    audit,
    clock,
    demo,
    directives,
    durations,
    instances,
    migrate,
    notification_delivery,
    process_models,
    timers,
)
from engine.db import Database, get_database
from engine.errors import TansiqError
from engine.logs import configure_logging
from engine.settings import get_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
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


@app.callback()
def _setup() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except TansiqError as exc:
        typer.echo(f"error: {exc}", err=True)
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


@models_app.command("deploy")
def models_deploy(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    by: Annotated[str, typer.Option(help="Who deploys (recorded).")] = "cli",
) -> None:
    """Validate and deploy BPMN files; identical content is the same version. All or nothing."""
    db = get_database()
    with _one_line_errors(), db.transaction() as session:
        results = [process_models.deploy(session, path.read_bytes(), path.name, by) for path in files]
    for deployment in results:
        model = deployment.model
        verb = "deployed" if deployment.created else "unchanged"
        typer.echo(f"{verb}: {model.key} version {model.version} ({model.filename})")


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
    status: Annotated[str | None, typer.Option(help="running, completed, cancelled or incident.")] = None,
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
def instances_retry(instance_id: int, by: str = "cli") -> None:
    """Run an instance in incident again from its last clean point."""
    with _one_line_errors(), get_database().transaction() as session:
        instance = instances.retry(session, instance_id, by)
    typer.echo(f"instance {instance.id}: {instance.status}")


@instances_app.command("cancel")
def instances_cancel(instance_id: int, by: str = "cli") -> None:
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
    typer.echo("timer worker running; Ctrl+C to stop")
    timers.run_forever(db, size, settings.timer_poll_seconds)


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
    status: Annotated[str | None, typer.Option(help="draft, active, completed or cancelled.")] = None,
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
    typer.echo("notification worker running; Ctrl+C to stop")
    notification_delivery.run_forever(db)


@notifications_app.command("digest")
def notifications_digest(
    day: Annotated[str | None, typer.Option(help="The day (YYYY-MM-DD, Riyadh); today by default.")] = None,
) -> None:
    """Queue each entity's daily digest of open steps (once per entity and day)."""
    with _one_line_errors():
        try:
            chosen = date.fromisoformat(day) if day else notification_delivery.riyadh_today()
        except ValueError:
            raise TansiqError(f"not a date: {day!r}") from None
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
def run() -> None:
    """Start Tansiq on the embedded default: migrate, deploy the shipped models, seed the demo season on first
    start, run the timer worker."""
    settings = get_settings()
    url = settings.effective_database_url
    migrate.upgrade(url)
    db = get_database(url)
    files = sorted(SHIPPED_MODELS.glob("*.bpmn"))
    with _one_line_errors():
        if settings.demo and not demo.is_seeded(db):
            _seed_demo(db, days=21)
        with db.transaction() as session:
            for path in files:
                process_models.deploy(session, path.read_bytes(), path.name, "tansiq run")
    typer.echo(f"Tansiq on {url}: {len(files)} shipped models deployed; timer worker running (Ctrl+C to stop)")
    timers.run_forever(db, settings.timer_batch_size, settings.timer_poll_seconds)


def main() -> None:  # pragma: no cover - console entry for `python -m api.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
