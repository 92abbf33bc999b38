"""The system as a whole: the schema, migrations, backup and restore, moving files, import jobs, the demo.

`schema` imports every table (for Alembic and for the engine package itself, see `engine/__init__.py`);
`migrate` runs the Alembic migrations in `engine/migrations`.

May import: every other engine package.
"""
