"""`tansiq messages send` and `tansiq instances migrate`: the operations view's writes from the command line."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from engine.foundation.errors import InvalidInput
from engine.storage.db import get_database
from engine.work import instance_migration, messages

messages_app = typer.Typer(help="Messages into waiting process instances.", no_args_is_help=True)
console = Console()


def _errors() -> AbstractContextManager[None]:
    """The CLI's one-line errors (imported late: api.cli imports this module to register it)."""
    from api.cli import _one_line_errors

    return _one_line_errors()


def json_object(option: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{option} is not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{option} must be a JSON object")
    return value


@messages_app.command("send")
def send(
    name: Annotated[str, typer.Argument(help="The message's name, as the model's message element names it.")],
    payload: Annotated[str, typer.Option(help="What the message carries, a JSON object.")] = "{}",
    business_key: Annotated[str | None, typer.Option(help="Only the instance with this business key.")] = None,
    correlation: Annotated[str | None, typer.Option(
        help="A JSON object of values the waiting instance's variables must equal.")] = None,
    to_all: Annotated[bool, typer.Option("--all", help="Deliver to every matching instance.")] = False,
    by: Annotated[str, typer.Option(help="Who sends it (recorded).")] = "cli",
) -> None:
    """Deliver a message to the running instance waiting for it (an error when none or, without --all,
    several wait)."""
    with _errors():
        values = json_object("--payload", payload) or {}
        keys = json_object("--correlation", correlation)
        with get_database().transaction() as session:
            delivered = messages.deliver(session, name, values, by, business_key=business_key, correlation=keys,
                                         to_all=to_all)
            lines = [f"instance {i.id}: {i.status}" for i in delivered]
    typer.echo("\n".join(lines))


def migrate_instances(
    key: Annotated[str, typer.Argument(help="The model's key.")],
    from_version: Annotated[int, typer.Argument(help="The version its instances are on.", min=1)],
    to_version: Annotated[int, typer.Argument(help="The newer version to move them to.", min=1)],
    instance: Annotated[list[int] | None, typer.Option(help="Only this instance (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would move and what cannot.")] = False,
    by: Annotated[str, typer.Option(help="Who migrates (recorded).")] = "cli",
) -> None:
    """Move the running and in-incident instances of a version to a newer one, each whole or not at all."""
    with _errors():
        db = get_database()
        outcomes: dict[int, str] = {}
        if dry_run:
            with db.reading() as session:
                plans = instance_migration.plan_many(session, key, from_version, to_version, instance or None)
        else:
            with db.transaction() as session:
                moved = instance_migration.migrate_many(session, key, from_version, to_version, by, instance or None)
            plans = [outcome.plan for outcome in moved]
            outcomes = {o.instance_id: "moved" if o.migrated else f"refused: {o.message}" for o in moved}
    table = Table("instance", "business key", "tokens", "outcome" if not dry_run else "would")
    for plan in plans:
        tokens = ", ".join(m.element_id for m in (plan.plan.moves if plan.plan else []))
        would = "move" if plan.possible else "refuse: " + "; ".join(plan.reasons)
        table.add_row(str(plan.instance_id), plan.business_key or "", tokens, outcomes.get(plan.instance_id, would))
    console.print(table)
    if not plans:
        typer.echo(f"no running instance of {key} version {from_version}")
