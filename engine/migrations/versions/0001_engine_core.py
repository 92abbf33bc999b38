"""engine core

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 13:10:36.032553
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('process_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('name_ar', sa.String(length=300), nullable=True),
    sa.Column('name_en', sa.String(length=300), nullable=True),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('bpmn_xml', sa.Text(), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('element_count', sa.Integer(), nullable=False),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('deployed_at', engine.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deployed_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['previous_id'], ['process_model.id'], name=op.f('fk_process_model_previous_id_process_model')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_model')),
    sa.UniqueConstraint('key', 'checksum', name=op.f('uq_process_model_key_checksum')),
    sa.UniqueConstraint('key', 'version', name=op.f('uq_process_model_key_version'))
    )
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_model_checksum'), ['checksum'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_model_key'), ['key'], unique=False)

    op.create_table('process_instance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('business_key', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('business_status', sa.String(length=60), nullable=True),
    sa.Column('state', engine.db.GzipJSON(), nullable=False),
    sa.Column('next_timer_at', engine.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('incident_message', sa.Text(), nullable=True),
    sa.Column('incident_element', sa.String(length=200), nullable=True),
    sa.Column('incident_at', engine.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_by', sa.String(length=200), nullable=False),
    sa.Column('started_at', engine.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', engine.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', engine.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['process_model.id'], name=op.f('fk_process_instance_model_id_process_model')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_instance'))
    )
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_instance_business_key'), ['business_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_next_timer_at'), ['next_timer_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_status'), ['status'], unique=False)

    op.create_table('escalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('source_key', sa.String(length=250), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('target_role', sa.String(length=40), nullable=False),
    sa.Column('entity', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('raised_at', engine.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_escalation_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation')),
    sa.UniqueConstraint('instance_id', 'source_key', name=op.f('uq_escalation_instance_id_source_key'))
    )
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_entity'), ['entity'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_raised_at'), ['raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_status'), ['status'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('source_key', sa.String(length=250), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('recipient_role', sa.String(length=40), nullable=True),
    sa.Column('recipient_entity', sa.String(length=100), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', engine.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_notification_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('instance_id', 'source_key', name=op.f('uq_notification_instance_id_source_key'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_status'), ['status'], unique=False)

    op.create_table('work_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('name_ar', sa.String(length=300), nullable=True),
    sa.Column('name_en', sa.String(length=300), nullable=True),
    sa.Column('lane', sa.String(length=200), nullable=True),
    sa.Column('assignee_role', sa.String(length=40), nullable=True),
    sa.Column('assignee_entity', sa.String(length=100), nullable=True),
    sa.Column('due_at', engine.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('form_schema', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', engine.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', engine.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=200), nullable=True),
    sa.Column('completion_data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_work_item_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_item')),
    sa.UniqueConstraint('task_id', name=op.f('uq_work_item_task_id'))
    )
    with op.batch_alter_table('work_item', schema=None) as batch_op:
        batch_op.create_index('ix_work_item_inbox_entity', ['assignee_entity', 'status', 'due_at'], unique=False)
        batch_op.create_index('ix_work_item_inbox_role', ['assignee_role', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_item_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_item_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('work_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_item_status'))
        batch_op.drop_index(batch_op.f('ix_work_item_instance_id'))
        batch_op.drop_index('ix_work_item_inbox_role')
        batch_op.drop_index('ix_work_item_inbox_entity')

    op.drop_table('work_item')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_status'))
        batch_op.drop_index(batch_op.f('ix_notification_instance_id'))

    op.drop_table('notification')
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_status'))
        batch_op.drop_index(batch_op.f('ix_escalation_raised_at'))
        batch_op.drop_index(batch_op.f('ix_escalation_instance_id'))
        batch_op.drop_index(batch_op.f('ix_escalation_entity'))

    op.drop_table('escalation')
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_instance_status'))
        batch_op.drop_index(batch_op.f('ix_process_instance_next_timer_at'))
        batch_op.drop_index(batch_op.f('ix_process_instance_model_id'))
        batch_op.drop_index(batch_op.f('ix_process_instance_business_key'))

    op.drop_table('process_instance')
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_model_key'))
        batch_op.drop_index(batch_op.f('ix_process_model_checksum'))

    op.drop_table('process_model')
