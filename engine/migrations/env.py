"""Alembic environment: the URL comes from `engine.system.migrate`, the metadata from `engine.system.schema`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from engine.system.schema import Base

config = context.config
url = config.attributes["database_url"]


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as fresh:
            _configure_and_run(fresh)
    finally:
        engine.dispose()


run_migrations()
