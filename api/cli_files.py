"""`tansiq files`: move every stored file between the database and the disk, and check them all."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from engine.foundation.settings import get_settings
from engine.storage.db import get_database
from engine.system import file_transfer

files_app = typer.Typer(help="Stored files (evidence, meeting documents, report archives, import uploads).",
                        no_args_is_help=True)


def _errors() -> AbstractContextManager[None]:
    """The CLI's one-line errors (imported here, late: api.cli imports this module to register it)."""
    from api.cli import _one_line_errors

    return _one_line_errors()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                    transient=False)


@files_app.command("move")
def move(
    to: Annotated[Literal["database", "disk"], typer.Option("--to", help="The backend to move every file to.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would move.")] = False,
) -> None:
    """Move every stored file to one backend: each copy is read back and its SHA-256 compared before the
    source copy is removed (set TANSIQ_FILES_BACKEND to match afterwards)."""
    home = get_settings().home
    with _errors():
        db = get_database()
        items = file_transfer.to_move(db, home, to)
        total = sum(item.size for item in items)
        if dry_run:
            for item in items:
                typer.echo(f"would move {item.label} ({item.size:,} bytes)")
            typer.echo(f"{len(items)} file(s), {total:,} bytes would move to the {to}")
            return
        with _progress() as bar:
            task = bar.add_task(f"to the {to}", total=total)
            for item in items:
                file_transfer.move_one(db, home, item, to)
                bar.advance(task, item.size)
    typer.echo(f"moved {len(items)} file(s), {total:,} bytes, to the {to}")


@files_app.command("verify")
def verify() -> None:
    """Re-compute every stored file's SHA-256 (both backends) and check every file a row names exists;
    exit 1 naming the first bad one."""
    home = get_settings().home
    with _errors():
        db = get_database()
        items = file_transfer.everything(db, home)
        with _progress() as bar:
            task = bar.add_task("checking", total=sum(item.size for item in items))
            for item in items:
                problem = file_transfer.check_one(db, item)
                if problem is not None:
                    typer.echo(f"error: {problem}", err=True)
                    raise typer.Exit(1)
                bar.advance(task, item.size)
        problem = next(file_transfer.missing(db, home), None)
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(items)} stored file(s) checked: every checksum matches and no file is missing")
