"""`tansiq settings`: the reference of every setting, and a check of the ones this environment sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from api.settings_reference import SECTIONS, env_file, every_setting, problems_of

settings_app = typer.Typer(help="Settings (TANSIQ_* environment variables).", no_args_is_help=True)


@settings_app.command("env")
def settings_env(
    output: Annotated[Path | None, typer.Option("--output", "-o", dir_okay=False,
                                                help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print every TANSIQ_* setting with its default and meaning, as an environment file (deploy/tansiq.env)."""
    text = env_file()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(every_setting())} settings written to {output}")


@settings_app.command("check")
def settings_check() -> None:
    """Read every setting from this environment as the services will; name each bad or unknown one."""
    problems = []
    for _, cls in SECTIONS:
        try:
            cls()
        except ValidationError as exc:
            problems += problems_of(exc)
    known = {setting.variable for setting in every_setting()}
    problems += [f"{name}: not a Tansiq setting (a typo?)" for name in sorted(os.environ)
                 if name.startswith("TANSIQ_") and name not in known and not name.startswith("TANSIQ_TEST_")]
    if problems:
        for problem in dict.fromkeys(problems):
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    set_here = sorted(name for name in os.environ if name in known)
    typer.echo(f"settings are valid ({len(set_here)} of {len(known)} set here: {', '.join(set_here) or 'none'})")
