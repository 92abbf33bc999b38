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
    op.add_column('process_instance', sa.Column('waiting_messages', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35 and later have it): batch mode would copy process_instance into a new
    # table and drop the old one, which the foreign keys of its steps and escalations refuse.
    op.drop_column('process_instance', 'waiting_messages')
