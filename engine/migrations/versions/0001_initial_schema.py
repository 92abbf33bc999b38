"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 15:05:31.948113
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.storage.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('subject', sa.String(length=120), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_event_hash'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_subject'), ['subject'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.bulk_insert(sa.table('audit_head', sa.column('id', sa.Integer), sa.column('last_id', sa.Integer),
                            sa.column('last_hash', sa.String)),
                   [{'id': 1, 'last_id': 0, 'last_hash': '0' * 64}])
    op.create_table('directive_sequence',
    sa.Column('hijri_year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hijri_year', name=op.f('pk_directive_sequence'))
    )
    op.create_table('entity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name_ar', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entity')),
    sa.UniqueConstraint('code', name=op.f('uq_entity_code'))
    )
    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=60), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_attempt_at'), ['at'], unique=False)
        batch_op.create_index('ix_login_attempt_username_at', ['username', 'at'], unique=False)

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
    sa.Column('deployed_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deployed_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['previous_id'], ['process_model.id'], name=op.f('fk_process_model_previous_id_process_model')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_model')),
    sa.UniqueConstraint('key', 'checksum', name=op.f('uq_process_model_key_checksum')),
    sa.UniqueConstraint('key', 'version', name=op.f('uq_process_model_key_version'))
    )
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_model_checksum'), ['checksum'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_model_key'), ['key'], unique=False)

    op.create_table('public_feedback_rate',
    sa.Column('client_key', sa.String(length=64), nullable=False),
    sa.Column('window_started_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_count', sa.Integer(), nullable=False),
    sa.Column('day_started_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('day_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('client_key', name=op.f('pk_public_feedback_rate'))
    )
    with op.batch_alter_table('public_feedback_rate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_public_feedback_rate_day_started_at'), ['day_started_at'], unique=False)

    op.create_table('season',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hijri_year', sa.Integer(), nullable=False),
    sa.Column('name_ar', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('calendar_mode', sa.String(length=20), nullable=False),
    sa.Column('holidays', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_season')),
    sa.UniqueConstraint('hijri_year', name=op.f('uq_season_hijri_year'))
    )
    op.create_table('meeting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('season_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title_ar', sa.String(length=300), nullable=False),
    sa.Column('title_en', sa.String(length=300), nullable=True),
    sa.Column('held_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('chair', sa.String(length=200), nullable=True),
    sa.Column('minutes', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['season_id'], ['season.id'], name=op.f('fk_meeting_season_id_season')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting')),
    sa.UniqueConstraint('season_id', 'number', name=op.f('uq_meeting_season_id_number'))
    )
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_season_id'), ['season_id'], unique=False)

    op.create_table('pilgrim_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('season_id', sa.Integer(), nullable=False),
    sa.Column('received_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('service', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('text_ar', sa.Text(), nullable=True),
    sa.Column('text_en', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.Column('source_ref', sa.String(length=100), nullable=True),
    sa.Column('form_nonce', sa.String(length=64), nullable=True),
    sa.Column('updated_by', sa.String(length=200), nullable=True),
    sa.Column('updated_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['entity_id'], ['entity.id'], name=op.f('fk_pilgrim_feedback_entity_id_entity')),
    sa.ForeignKeyConstraint(['season_id'], ['season.id'], name=op.f('fk_pilgrim_feedback_season_id_season')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pilgrim_feedback')),
    sa.UniqueConstraint('form_nonce', name=op.f('uq_pilgrim_feedback_form_nonce')),
    sa.UniqueConstraint('source_ref', name=op.f('uq_pilgrim_feedback_source_ref'))
    )
    with op.batch_alter_table('pilgrim_feedback', schema=None) as batch_op:
        batch_op.create_index('ix_pilgrim_feedback_entity_received', ['entity_id', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pilgrim_feedback_received_at'), ['received_at'], unique=False)
        batch_op.create_index('ix_pilgrim_feedback_season_received', ['season_id', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pilgrim_feedback_service'), ['service'], unique=False)
        batch_op.create_index(batch_op.f('ix_pilgrim_feedback_status'), ['status'], unique=False)

    op.create_table('process_instance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('business_key', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('business_status', sa.String(length=60), nullable=True),
    sa.Column('state', engine.storage.db.GzipJSON(), nullable=False),
    sa.Column('next_timer_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('incident_message', sa.Text(), nullable=True),
    sa.Column('incident_element', sa.String(length=200), nullable=True),
    sa.Column('incident_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_by', sa.String(length=200), nullable=False),
    sa.Column('started_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lock_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['process_model.id'], name=op.f('fk_process_instance_model_id_process_model')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_instance'))
    )
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_instance_business_key'), ['business_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_next_timer_at'), ['next_timer_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_process_instance_status'), ['status'], unique=False)

    op.create_table('report_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('season_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('formats', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('languages', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('summary', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('prefect_flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('started_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['season_id'], ['season.id'], name=op.f('fk_report_run_season_id_season')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_run'))
    )
    with op.batch_alter_table('report_run', schema=None) as batch_op:
        batch_op.create_index('ix_report_run_kind_period', ['kind', 'period_start', 'period_end'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_run_prefect_flow_run_id'), ['prefect_flow_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_run_season_id'), ['season_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_run_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_run_status'), ['status'], unique=False)

    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=60), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('tokens_valid_after', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entity.id'], name=op.f('fk_user_account_entity_id_entity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('username', name=op.f('uq_user_account_username'))
    )
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_account_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_account_role'), ['role'], unique=False)

    op.create_table('directive',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('season_id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('title_en', sa.String(length=500), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=300), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('track', sa.String(length=20), nullable=False),
    sa.Column('programme_track', sa.String(length=10), nullable=False),
    sa.Column('priority', sa.String(length=10), nullable=False),
    sa.Column('responsible_entity_id', sa.Integer(), nullable=False),
    sa.Column('deadline_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('process_model_key', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('launched_by', sa.String(length=200), nullable=True),
    sa.Column('launched_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('current_steps', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('current_due_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('extension_count', sa.Integer(), nullable=False),
    sa.Column('completed_on_time', sa.Boolean(), nullable=True),
    sa.Column('incident', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_directive_instance_id_process_instance')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name=op.f('fk_directive_meeting_id_meeting')),
    sa.ForeignKeyConstraint(['responsible_entity_id'], ['entity.id'], name=op.f('fk_directive_responsible_entity_id_entity')),
    sa.ForeignKeyConstraint(['season_id'], ['season.id'], name=op.f('fk_directive_season_id_season')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directive')),
    sa.UniqueConstraint('instance_id', name=op.f('uq_directive_instance_id')),
    sa.UniqueConstraint('reference', name=op.f('uq_directive_reference'))
    )
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directive_current_due_at'), ['current_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_directive_deadline_at'), ['deadline_at'], unique=False)
        batch_op.create_index('ix_directive_entity_status', ['responsible_entity_id', 'status', 'current_due_at'], unique=False)
        batch_op.create_index('ix_directive_escalated', ['escalation_level', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_directive_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index('ix_directive_register', ['season_id', 'status', 'priority'], unique=False)
        batch_op.create_index(batch_op.f('ix_directive_season_id'), ['season_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_directive_status'), ['status'], unique=False)

    op.create_table('feedback_tag',
    sa.Column('feedback_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=60), nullable=False),
    sa.ForeignKeyConstraint(['feedback_id'], ['pilgrim_feedback.id'], name=op.f('fk_feedback_tag_feedback_id_pilgrim_feedback'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('feedback_id', 'tag', name=op.f('pk_feedback_tag'))
    )
    with op.batch_alter_table('feedback_tag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_tag_tag'), ['tag'], unique=False)

    op.create_table('meeting_attendee',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entity_id'], ['entity.id'], name=op.f('fk_meeting_attendee_entity_id_entity')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name=op.f('fk_meeting_attendee_meeting_id_meeting'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('meeting_id', 'entity_id', name=op.f('pk_meeting_attendee'))
    )
    with op.batch_alter_table('meeting_attendee', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_attendee_entity_id'), ['entity_id'], unique=False)

    op.create_table('meeting_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=200), nullable=False),
    sa.Column('uploaded_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name=op.f('fk_meeting_document_meeting_id_meeting'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_document'))
    )
    with op.batch_alter_table('meeting_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_document_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_document_sha256'), ['sha256'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('source_key', sa.String(length=250), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('recipient_role', sa.String(length=40), nullable=True),
    sa.Column('recipient_entity', sa.String(length=100), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_notification_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('source_key', name=op.f('uq_notification_source_key'))
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
    sa.Column('due_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('form_schema', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=200), nullable=True),
    sa.Column('completion_data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('progress_percent', sa.Integer(), nullable=True),
    sa.Column('progress_note', sa.String(length=2000), nullable=True),
    sa.Column('progress_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_work_item_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_item')),
    sa.UniqueConstraint('task_id', name=op.f('uq_work_item_task_id'))
    )
    with op.batch_alter_table('work_item', schema=None) as batch_op:
        batch_op.create_index('ix_work_item_inbox_entity', ['assignee_entity', 'status', 'due_at'], unique=False)
        batch_op.create_index('ix_work_item_inbox_role', ['assignee_role', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_item_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_item_status'), ['status'], unique=False)

    op.create_table('directive_supporting_entity',
    sa.Column('directive_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['directive_id'], ['directive.id'], name=op.f('fk_directive_supporting_entity_directive_id_directive'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entity_id'], ['entity.id'], name=op.f('fk_directive_supporting_entity_entity_id_entity')),
    sa.PrimaryKeyConstraint('directive_id', 'entity_id', name=op.f('pk_directive_supporting_entity'))
    )
    with op.batch_alter_table('directive_supporting_entity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directive_supporting_entity_entity_id'), ['entity_id'], unique=False)

    op.create_table('directive_tag',
    sa.Column('directive_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=60), nullable=False),
    sa.ForeignKeyConstraint(['directive_id'], ['directive.id'], name=op.f('fk_directive_tag_directive_id_directive'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('directive_id', 'tag', name=op.f('pk_directive_tag'))
    )
    with op.batch_alter_table('directive_tag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directive_tag_tag'), ['tag'], unique=False)

    op.create_table('escalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('source_key', sa.String(length=250), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('target_role', sa.String(length=40), nullable=False),
    sa.Column('entity', sa.String(length=100), nullable=True),
    sa.Column('directive_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('raised_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_action', sa.String(length=20), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('resolved_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['directive_id'], ['directive.id'], name=op.f('fk_escalation_directive_id_directive'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_escalation_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation')),
    sa.UniqueConstraint('instance_id', 'source_key', name=op.f('uq_escalation_instance_id_source_key'))
    )
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_directive_id'), ['directive_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_entity'), ['entity'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_raised_at'), ['raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_status'), ['status'], unique=False)

    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('directive_id', sa.Integer(), nullable=True),
    sa.Column('work_item_id', sa.Integer(), nullable=True),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=200), nullable=False),
    sa.Column('uploaded_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['directive_id'], ['directive.id'], name=op.f('fk_evidence_directive_id_directive'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_evidence_instance_id_process_instance'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['work_item_id'], ['work_item.id'], name=op.f('fk_evidence_work_item_id_work_item'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence'))
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_directive_id'), ['directive_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_work_item_id'), ['work_item_id'], unique=False)

    op.create_table('feedback_directive',
    sa.Column('feedback_id', sa.Integer(), nullable=False),
    sa.Column('directive_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['directive_id'], ['directive.id'], name=op.f('fk_feedback_directive_directive_id_directive'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['feedback_id'], ['pilgrim_feedback.id'], name=op.f('fk_feedback_directive_feedback_id_pilgrim_feedback'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('feedback_id', 'directive_id', name=op.f('pk_feedback_directive'))
    )
    with op.batch_alter_table('feedback_directive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_directive_directive_id'), ['directive_id'], unique=False)

    op.create_table('notification_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('read_at', engine.storage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], name=op.f('fk_notification_delivery_notification_id_notification'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_notification_delivery_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_delivery')),
    sa.UniqueConstraint('notification_id', 'user_id', 'channel', name=op.f('uq_notification_delivery_notification_id_user_id_channel'))
    )
    with op.batch_alter_table('notification_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_delivery_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_delivery_notification_id'), ['notification_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_delivery_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notification_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_delivery_user_id'))
        batch_op.drop_index(batch_op.f('ix_notification_delivery_notification_id'))
        batch_op.drop_index(batch_op.f('ix_notification_delivery_next_attempt_at'))

    op.drop_table('notification_delivery')
    with op.batch_alter_table('feedback_directive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_directive_directive_id'))

    op.drop_table('feedback_directive')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_work_item_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_sha256'))
        batch_op.drop_index(batch_op.f('ix_evidence_instance_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_directive_id'))

    op.drop_table('evidence')
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_status'))
        batch_op.drop_index(batch_op.f('ix_escalation_raised_at'))
        batch_op.drop_index(batch_op.f('ix_escalation_instance_id'))
        batch_op.drop_index(batch_op.f('ix_escalation_entity'))
        batch_op.drop_index(batch_op.f('ix_escalation_directive_id'))

    op.drop_table('escalation')
    with op.batch_alter_table('directive_tag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directive_tag_tag'))

    op.drop_table('directive_tag')
    with op.batch_alter_table('directive_supporting_entity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directive_supporting_entity_entity_id'))

    op.drop_table('directive_supporting_entity')
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
    with op.batch_alter_table('meeting_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_document_sha256'))
        batch_op.drop_index(batch_op.f('ix_meeting_document_meeting_id'))

    op.drop_table('meeting_document')
    with op.batch_alter_table('meeting_attendee', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_attendee_entity_id'))

    op.drop_table('meeting_attendee')
    with op.batch_alter_table('feedback_tag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_tag_tag'))

    op.drop_table('feedback_tag')
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directive_status'))
        batch_op.drop_index(batch_op.f('ix_directive_season_id'))
        batch_op.drop_index('ix_directive_register')
        batch_op.drop_index(batch_op.f('ix_directive_meeting_id'))
        batch_op.drop_index('ix_directive_escalated')
        batch_op.drop_index('ix_directive_entity_status')
        batch_op.drop_index(batch_op.f('ix_directive_deadline_at'))
        batch_op.drop_index(batch_op.f('ix_directive_current_due_at'))

    op.drop_table('directive')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_account_role'))
        batch_op.drop_index(batch_op.f('ix_user_account_entity_id'))

    op.drop_table('user_account')
    with op.batch_alter_table('report_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_run_status'))
        batch_op.drop_index(batch_op.f('ix_report_run_started_at'))
        batch_op.drop_index(batch_op.f('ix_report_run_season_id'))
        batch_op.drop_index(batch_op.f('ix_report_run_prefect_flow_run_id'))
        batch_op.drop_index('ix_report_run_kind_period')

    op.drop_table('report_run')
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_instance_status'))
        batch_op.drop_index(batch_op.f('ix_process_instance_next_timer_at'))
        batch_op.drop_index(batch_op.f('ix_process_instance_model_id'))
        batch_op.drop_index(batch_op.f('ix_process_instance_business_key'))

    op.drop_table('process_instance')
    with op.batch_alter_table('pilgrim_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pilgrim_feedback_status'))
        batch_op.drop_index(batch_op.f('ix_pilgrim_feedback_service'))
        batch_op.drop_index('ix_pilgrim_feedback_season_received')
        batch_op.drop_index(batch_op.f('ix_pilgrim_feedback_received_at'))
        batch_op.drop_index('ix_pilgrim_feedback_entity_received')

    op.drop_table('pilgrim_feedback')
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_season_id'))

    op.drop_table('meeting')
    op.drop_table('season')
    with op.batch_alter_table('public_feedback_rate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_public_feedback_rate_day_started_at'))

    op.drop_table('public_feedback_rate')
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_model_key'))
        batch_op.drop_index(batch_op.f('ix_process_model_checksum'))

    op.drop_table('process_model')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_username_at')
        batch_op.drop_index(batch_op.f('ix_login_attempt_at'))

    op.drop_table('login_attempt')
    op.drop_table('entity')
    op.drop_table('directive_sequence')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_subject'))

    op.drop_table('audit_event')
