"""the index on process_instance.status alone goes: `ix_process_instance_due (status, next_timer_at)` serves it

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 18:20:00

Every query that narrows instances by status — the timer poll, /healthz's oldest due timer, `tansiq
instances list --status` — is answered by the leading column of migration 0006's index, on both databases.
The single-column index was one more entry to write for every instance started and, on PostgreSQL, for
every save that changes an indexed column (a timer's next moment: not a HOT update), i.e. every escalation.
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_process_instance_status')


def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index('ix_process_instance_status', ['status'], unique=False)
