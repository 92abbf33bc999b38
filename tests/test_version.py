"""One version, pyproject.toml's (through the installed package's metadata): `tansiq --version` and /livez."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import cli
from api.app import create_app
from engine.foundation.settings import get_settings
from engine.foundation.version import installed_version
from engine.storage.db import Database
from tests.test_api_support import make_settings

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what the project has
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def project_version() -> str:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]


def test_the_installed_version_is_the_projects():
    assert installed_version() == project_version(), "pyproject.toml's version changed: reinstall the package"


def test_tansiq_version_needs_no_settings_or_database(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TANSIQ_DATABASE_URL", "not a database url")
    monkeypatch.setenv("TANSIQ_LOG_LEVEL", "nonsense")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["--version"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.output == f"tansiq {installed_version()}\n"


def test_livez_reports_the_version(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'unused.db'}"  # /livez touches no database
    database = Database(url)
    try:
        client = TestClient(create_app(make_settings(tmp_path, url), database=database))
        body = client.get("/livez").json()
    finally:
        database.dispose()
    assert body["version"] == installed_version() == project_version()
