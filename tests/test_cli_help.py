"""The `tansiq` help: top-level commands in panels, each group's commands in a sensible order, and options
that are choices refusing anything else with Typer's usage error (which names the choices)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from api import cli

runner = CliRunner(env={"COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"})


def _help(*args: str) -> str:
    result = runner.invoke(cli.app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def _listed(text: str) -> list[str]:
    """The command names of a help text's panels, in order (`│ name   summary`)."""
    return re.findall(r"^[│|] ([a-z][a-z-]*) {2,}", text, re.M)


def test_top_level_commands_are_grouped_in_panels():
    text = _help()
    panels = re.findall(r"[╭+]─ ([A-Za-z ]+?) ─", text)
    assert panels == ["Options", "Run", "Season data", "Reports", "Operations"]
    commands = _listed(text)
    assert commands == [name for names in cli.PANELS.values() for name in names]
    assert commands[:2] == ["serve", "run"] and commands.index("directives") < commands.index("reports")


def test_every_top_level_command_has_a_panel():
    registered = {c.name for c in cli.app.registered_commands} | {g.name for g in cli.app.registered_groups}
    assert registered == {name for names in cli.PANELS.values() for name in names}


@pytest.mark.parametrize(("group", "expected"), [
    ("reports", ["list", "run", "serve", "deploy"]),
    ("instances", ["list", "start", "retry", "cancel", "migrate"]),
    ("directives", ["list", "template", "import"]),
    ("notifications", ["run", "status", "digest", "requeue-failed"]),
])
def test_sub_commands_come_in_a_sensible_order(group, expected):
    assert _listed(_help(group)) == expected


def test_the_version_option_is_in_the_help():
    assert "--version" in _help()


@pytest.mark.parametrize(("args", "option", "choices"), [
    (["directives", "import", __file__, "--mode", "everything"], "--mode", ["all_or_nothing", "valid_rows"]),
    (["directives", "template", "out.xlsx", "--lang", "fr"], "--lang", ["ar", "en"]),
    (["directives", "list", "--status", "open"], "--status", ["draft", "active", "completed", "cancelled"]),
    (["entities", "create", "--code", "x1", "--name-ar", "س", "--name-en", "x", "--kind", "club"], "--kind",
     ["service", "government", "operator", "private", "other"]),
    (["reports", "run", "weekly"], "kind", ["daily", "periodic", "seasonal"]),
    (["reports", "run", "daily", "--format", "pdf,docx"], "--format", ["pdf", "html", "xlsx", "csv", "json"]),
    (["reports", "list", "--kind", "monthly"], "--kind", ["daily", "periodic", "seasonal"]),
    (["feedback", "list", "--service", "food"], "--service", ["housing", "transport", "reception"]),
    (["files", "move", "--to", "s3"], "--to", ["database", "disk"]),
])
def test_a_wrong_choice_is_a_usage_error_naming_the_choices(args, option, choices):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"Invalid value for '{option}'" in text or f"Invalid value for '{{{option}}}'" in text, text
    assert all(choice in text for choice in choices), text
    assert text.startswith("Usage: "), text


def test_comma_separated_formats_still_parse():
    parse = cli._choices(*cli.REPORT_FORMATS)
    assert parse(" pdf, xlsx ") == "pdf,xlsx"


def test_the_cli_choices_are_the_engines_own_values():
    from typing import get_args

    from engine import feedback
    from engine.directives import directive_import, directives
    from engine.people import entities, users
    from engine.reports import common
    from engine.work import instances

    pairs = [(cli.Language, users.LANGUAGES), (cli.ReportKind, common.KINDS), (cli.InstanceStatus, instances.STATUSES),
             (cli.DirectiveStatus, directives.STATUSES), (cli.EntityKind, entities.KINDS),
             (cli.ImportMode, directive_import.MODES), (cli.FeedbackService, feedback.SERVICES),
             (cli.FeedbackStatus, feedback.STATUSES)]
    for choices, values in pairs:
        assert get_args(choices) == tuple(values)
