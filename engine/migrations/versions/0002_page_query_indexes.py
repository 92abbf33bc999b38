"""indexes behind the register, the escalation board and the register's text search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 16:40:00

Found by tests/test_query_plans.py (EXPLAIN of every query behind a page on a generated database):
- the register's default order (newest first) read and sorted every directive: (created_at, id);
- the escalation board's order (highest level, oldest first) sorted every open escalation:
  (status, level DESC, raised_at, id), which also answers its count and its per-level counts;
- the register's text search (ILIKE '%text%' on reference and titles) read every directive: trigram
  GIN indexes, on PostgreSQL only (SQLite has no such index; its search stays a scan);
- an entity's inbox sorted all its open steps to show 50, and counted them from the table: (assignee_entity,
  status, due_at, id) with assignee_role included on PostgreSQL, so `ORDER BY due_at NULLS LAST, id LIMIT 50`
  reads 50 entries and a count on work_item alone is an index-only scan (at 1,000,000 directives: 5 ms
  against 260-480 ms for the page, 15 ms against 400 ms for the count of 29,811 open steps).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

TRIGRAM = (('ix_directive_reference_trgm', 'reference'), ('ix_directive_title_trgm', 'title'),
           ('ix_directive_title_en_trgm', 'title_en'))


def upgrade() -> None:
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.create_index('ix_directive_created', ['created_at', 'id'], unique=False)
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_board', ['status', sa.text('level DESC'), 'raised_at', 'id'],
                              unique=False)
    with op.batch_alter_table('work_item', schema=None) as batch_op:
        batch_op.create_index('ix_work_item_inbox_entity_due', ['assignee_entity', 'status', 'due_at', 'id'],
                              unique=False, postgresql_include=['assignee_role'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for name, column in TRIGRAM:
            op.create_index(name, 'directive', [column], unique=False, postgresql_using='gin',
                            postgresql_ops={column: 'gin_trgm_ops'})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name, _ in TRIGRAM:
            op.drop_index(name, table_name='directive')
    with op.batch_alter_table('work_item', schema=None) as batch_op:
        batch_op.drop_index('ix_work_item_inbox_entity_due')
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index('ix_escalation_board')
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.drop_index('ix_directive_created')
