"""Arabic search folding: every text search compares folded twins of its columns, from an index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 11:30:00

Search did not find Arabic the way people type it (أ/ا, ة/ه, ى/ي, tashkeel, tatweel, Arabic-Indic digits).
Each searched column gets a folded twin, `<column>_folded`, that the engine writes with every write of the
column (engine/foundation/text_search.py: `fold`, the only folding, and the listener that keeps the twins):
- directive: reference, title, title_en; pilgrim_feedback: text_ar, text_en (searched since 0002/0007);
- meeting: title_ar, title_en; user_account: username, full_name, email (searched from now on).
Existing rows are folded here, in batches, by the same Python function (`text_search.refold`).
The indexes move from the columns to their twins, as they were:
- PostgreSQL: trigram GIN indexes on each twin (the five of 0002 and 0007 on the raw columns are dropped);
- SQLite: an FTS5 trigram table per searchable table over the twins (external content, kept by triggers on
  insert, delete and on updates of the twins only), replacing 0007's two tables over the raw columns.

Downgrade puts 0007's indexes back over the raw columns and drops the twins.
Note for later migrations (as for 0007): a batch operation that rebuilds one of these four tables on SQLite
drops its triggers with the old table; create them again (`_create_sqlite_index`). A migration that changes
`fold` refolds with `text_search.refold`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.foundation.text_search import refold

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SEARCHED = {  # table: (its FTS5 table on SQLite, the searched columns)
    'directive': ('directive_search', ('reference', 'title', 'title_en')),
    'pilgrim_feedback': ('pilgrim_feedback_search', ('text_ar', 'text_en')),
    'meeting': ('meeting_search', ('title_ar', 'title_en')),
    'user_account': ('user_account_search', ('username', 'full_name', 'email')),
}
BEFORE = {  # what 0002 and 0007 indexed, over the raw columns
    'directive': ('directive_search', ('reference', 'title', 'title_en')),
    'pilgrim_feedback': ('pilgrim_feedback_search', ('text_ar', 'text_en')),
}


def _folded(columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f'{c}_folded' for c in columns)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, (_, columns) in SEARCHED.items():
        for name in _folded(columns):
            op.add_column(table, sa.Column(name, sa.Text(), nullable=True))
        refold(op.get_bind(), table, columns)
    if sqlite:
        _drop_sqlite_indexes(BEFORE)
        for table, (fts, columns) in SEARCHED.items():
            _create_sqlite_index(table, fts, _folded(columns))
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for table, (_, columns) in BEFORE.items():
        for name in columns:
            op.drop_index(f'ix_{table}_{name}_trgm', table_name=table)
    for table, (_, columns) in SEARCHED.items():
        _create_trigram_indexes(table, _folded(columns))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _drop_sqlite_indexes(SEARCHED)
    else:
        for table, (_, columns) in SEARCHED.items():
            for name in _folded(columns):
                op.drop_index(f'ix_{table}_{name}_trgm', table_name=table)
    for table, (_, columns) in SEARCHED.items():
        for name in _folded(columns):
            op.drop_column(table, name)
    if sqlite:
        for table, (fts, columns) in BEFORE.items():
            _create_sqlite_index(table, fts, columns)
        return
    for table, (_, columns) in BEFORE.items():
        _create_trigram_indexes(table, columns)


def _create_trigram_indexes(table: str, columns: tuple[str, ...]) -> None:
    for name in columns:
        op.create_index(f'ix_{table}_{name}_trgm', table, [name], unique=False, postgresql_using='gin',
                        postgresql_ops={name: 'gin_trgm_ops'})


def _create_sqlite_index(table: str, fts: str, columns: tuple[str, ...]) -> None:
    listed = ', '.join(columns)
    new = ', '.join(f'new.{c}' for c in columns)
    old = ', '.join(f'old.{c}' for c in columns)
    op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({listed}, content='{table}', content_rowid='id', "
               f"tokenize='trigram')")
    op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
    op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
               f"INSERT INTO {fts}(rowid, {listed}) VALUES (new.id, {new}); END")
    op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
               f"INSERT INTO {fts}({fts}, rowid, {listed}) VALUES ('delete', old.id, {old}); END")
    op.execute(f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {listed} ON {table} BEGIN "
               f"INSERT INTO {fts}({fts}, rowid, {listed}) VALUES ('delete', old.id, {old}); "
               f"INSERT INTO {fts}(rowid, {listed}) VALUES (new.id, {new}); END")


def _drop_sqlite_indexes(indexes: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    for fts, _ in indexes.values():
        for event in ('insert', 'delete', 'update'):
            op.execute(f'DROP TRIGGER {fts}_{event}')
        op.execute(f'DROP TABLE {fts}')
