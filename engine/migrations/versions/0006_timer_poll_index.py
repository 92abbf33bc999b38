"""the timer poll reads only what is due, on SQLite too

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 16:40:00

The timer poll (`status = 'running' AND next_timer_at < now ORDER BY next_timer_at LIMIT n`, twice a second)
had an index on next_timer_at alone. PostgreSQL used it; SQLite, which keeps no statistics, chose the
index on status instead, read every running instance (its compressed state included) and sorted them all
to take 100. With 6,000 running directives that was most of a worker's added cost per escalation round
(bench/RESULTS.md, sixth pass). `(status, next_timer_at)` answers the poll in order on both; every query on
next_timer_at also asks for running instances, so the single-column index goes.
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index('ix_process_instance_due', ['status', 'next_timer_at'], unique=False)
        batch_op.drop_index('ix_process_instance_next_timer_at')


def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index('ix_process_instance_next_timer_at', ['next_timer_at'], unique=False)
        batch_op.drop_index('ix_process_instance_due')
