"""Every test that touches a database runs twice: on SQLite and on PostgreSQL.

PostgreSQL tests create their own database with a random name and drop it at the end; they never
touch the `test` database. PostgreSQL is not optional: `make test` starts it when it is down.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="tansiq-test-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["TANSIQ_HOME"] = _HOME
os.environ.pop("TANSIQ_DATABASE_URL", None)

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from engine.foundation import clock  # noqa: E402
from engine.storage.audit import GENESIS, AuditHead  # noqa: E402
from engine.storage.db import Database  # noqa: E402
from engine.system import migrate  # noqa: E402
from engine.system.schema import Base  # noqa: E402
from tests.smtp_server import smtp  # noqa: E402, F401  (the `smtp` fixture: a real server on loopback)

PG_ADMIN_URL = os.environ.get("TANSIQ_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BPMN_DIR = Path(__file__).parent / "bpmn"
SHIPPED_BPMN_DIR = Path(__file__).parent.parent / "bpmn"


def _create_pg_database() -> tuple[str, str]:
    name = f"tansiq_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'tansiq.db'}"
        migrate.upgrade(url)
        yield url
        return
    name, url = _create_pg_database()
    try:
        migrate.upgrade(url)
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database, emptied before each test."""
    database = Database(database_url, pool_size=12)
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
        connection.execute(AuditHead.__table__.insert().values(id=1, last_id=0, last_hash=GENESIS))
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _wall_clock() -> Iterator[None]:
    clock.set_now(None)
    yield
    clock.set_now(None)


def deploy_shipped(session, name: str, actor: str = "tester"):
    """A shipped model, after the shipped decision tables its business rule tasks name (a test model of
    tests/bpmn is deployed as it is)."""
    from engine.bpmn import decision_tables, process_models

    if (BPMN_DIR / name).exists():
        return process_models.deploy(session, (BPMN_DIR / name).read_bytes(), name, actor)
    for table in sorted(SHIPPED_BPMN_DIR.glob("*.dmn")):
        decision_tables.deploy(session, table.read_bytes(), table.name, actor)
    return process_models.deploy(session, (SHIPPED_BPMN_DIR / name).read_bytes(), name, actor)


def read_model(name: str) -> bytes:
    path = BPMN_DIR / name
    if not path.exists():
        path = SHIPPED_BPMN_DIR / name
    return path.read_bytes()
