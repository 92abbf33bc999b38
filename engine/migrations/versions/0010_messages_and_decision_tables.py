"""the messages each process instance waits for; decision tables (DMN) and the versions an instance uses

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:30:00

`POST /api/v1/messages` and `tansiq messages send` find the instances waiting for a message by this column
instead of loading every running instance's state. Rows written before it stay NULL, which means "not known":
those instances are loaded and checked until their next change writes the column.

`decision_table` holds deployed DMN decision tables, versioned as process models are; a model records the
versions built into its spec, an instance the versions it started with.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.storage.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('process_instance', sa.Column('waiting_messages', sa.String(length=1000), nullable=True))
    op.add_column('process_instance', sa.Column('decision_versions', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))
    op.add_column('process_model', sa.Column('decision_versions', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))
    op.create_table('decision_table',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('dmn_xml', sa.Text(), nullable=False),
    sa.Column('rule_count', sa.Integer(), nullable=False),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('deployed_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deployed_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['previous_id'], ['decision_table.id'],
                            name=op.f('fk_decision_table_previous_id_decision_table')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decision_table')),
    sa.UniqueConstraint('key', 'checksum', name=op.f('uq_decision_table_key_checksum')),
    sa.UniqueConstraint('key', 'version', name=op.f('uq_decision_table_key_version'))
    )
    with op.batch_alter_table('decision_table', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_table_key'), ['key'], unique=False)


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35 and later have it): batch mode would copy process_instance into a new
    # table and drop the old one, which the foreign keys of its steps and escalations refuse.
    op.drop_table('decision_table')
    op.drop_column('process_model', 'decision_versions')
    op.drop_column('process_instance', 'decision_versions')
    op.drop_column('process_instance', 'waiting_messages')
