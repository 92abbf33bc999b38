"""shared file storage (content-addressed blobs in chunks) and import jobs in a table

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:30:00

Files (evidence, meeting documents, report archives, import uploads) were written to the disk of the node
that received them; with `file_blob`/`file_chunk` every node reads every file, and a file commits with the
row that names it. `import_job` holds the web import's jobs, which lived in one process's memory.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.storage.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('file_blob',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('chunks', sa.Integer(), nullable=False),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_file_blob'))
    )
    op.create_table('file_chunk',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['sha256'], ['file_blob.sha256'], name=op.f('fk_file_chunk_sha256_file_blob'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sha256', 'seq', name=op.f('pk_file_chunk'))
    )
    op.create_table('import_job',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('season', sa.Integer(), nullable=True),
    sa.Column('phase', sa.String(length=20), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=True),
    sa.Column('launch', sa.Boolean(), nullable=False),
    sa.Column('report', engine.storage.db.GzipJSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('node', sa.String(length=100), nullable=True),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'], name=op.f('fk_import_job_owner_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job'))
    )
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_job_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_import_job_phase_updated', ['phase', 'updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.drop_index('ix_import_job_phase_updated')
        batch_op.drop_index(batch_op.f('ix_import_job_owner_id'))
    op.drop_table('import_job')
    op.drop_table('file_chunk')
    op.drop_table('file_blob')
