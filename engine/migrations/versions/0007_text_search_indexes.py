"""the register's and the feedback's text search answered from an index on both databases; feedback figures

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 18:10:00

A search is `ILIKE '%text%'` over a few columns (engine/foundation/text_search.py). Found by tests/test_query_plans.py,
which now checks SQLite's plans too: on SQLite the register's search read every directive (migration 0002
gave PostgreSQL trigram indexes and left SQLite a scan), and the feedback's search read every item on both.
- PostgreSQL: trigram GIN indexes on the feedback's two texts, as 0002 did for the directive's.
- SQLite: an FTS5 table with the trigram tokenizer per searchable table, external content (it keeps only
  the index, not a copy of the text), filled from the rows and kept by triggers on insert, delete and on
  updates of the indexed columns only (a directive's projection, updated at every step, does not touch it).

The same test, given a season's worth of feedback (27,000 items), found the feedback page's figures (a count
per service, rating and entity of every item the list shows) reading the whole table on PostgreSQL:
`ix_pilgrim_feedback_figures (service, rating, entity_id)` lets them count from the index alone.

Note for later migrations: on SQLite, a batch operation that rebuilds `directive` or `pilgrim_feedback`
(move and copy) drops their triggers with the old table; create them again (`_create_sqlite_index`).
tests/test_text_search.py holds each index to its table's rows after inserts, updates, deletes and this
migration (FTS5's integrity-check).
"""

from __future__ import annotations

import sqlite3

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

FEEDBACK_TRIGRAM = (('ix_pilgrim_feedback_text_ar_trgm', 'text_ar'), ('ix_pilgrim_feedback_text_en_trgm', 'text_en'))
SQLITE_INDEXES = {  # table: (its FTS5 table, the columns)
    'directive': ('directive_search', ('reference', 'title', 'title_en')),
    'pilgrim_feedback': ('pilgrim_feedback_search', ('text_ar', 'text_en')),
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite and sqlite3.sqlite_version_info < (3, 34):
        raise RuntimeError(f'Tansiq needs SQLite 3.34 or later (FTS5 with the trigram tokenizer); '
                           f'this is {sqlite3.sqlite_version}')
    with op.batch_alter_table('pilgrim_feedback', schema=None) as batch_op:
        batch_op.create_index('ix_pilgrim_feedback_figures', ['service', 'rating', 'entity_id'], unique=False)
    if sqlite:
        for table, (fts, columns) in SQLITE_INDEXES.items():
            _create_sqlite_index(table, fts, columns)
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for name, column in FEEDBACK_TRIGRAM:
        op.create_index(name, 'pilgrim_feedback', [column], unique=False, postgresql_using='gin',
                        postgresql_ops={column: 'gin_trgm_ops'})


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


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, _ in FEEDBACK_TRIGRAM:
            op.drop_index(name, table_name='pilgrim_feedback')
    else:
        _drop_sqlite_indexes()
    with op.batch_alter_table('pilgrim_feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_pilgrim_feedback_figures')


def _drop_sqlite_indexes() -> None:
    for fts, _ in SQLITE_INDEXES.values():
        for event in ('insert', 'delete', 'update'):
            op.execute(f'DROP TRIGGER {fts}_{event}')
        op.execute(f'DROP TABLE {fts}')
