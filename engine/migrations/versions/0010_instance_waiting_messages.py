"""the messages each process instance waits for, kept with its state

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:30:00

`POST /api/v1/messages` and `tansiq messages send` find the instances waiting for a message by this column
instead of loading every running instance's state. Rows written before it stay NULL, which means "not known":
those instances are loaded and checked until their next change writes the column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waiting_messages', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_column('waiting_messages')
