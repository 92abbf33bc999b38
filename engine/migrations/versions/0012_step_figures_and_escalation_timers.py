"""kept figures of every step (the heatmap, the forecast), the escalation timers each instance has set

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:30:00

`step_tally` holds, per model version, season, step, entity, track and day a step opened, how many visits
opened, are open, completed (by time open), were withdrawn, went past their due moment and came back
(rework); it is counted here from the steps there are (`engine.work.step_figures.recount`). `escalation_timer`
holds the escalation timers of running instances; it is filled here by loading each running instance once
(`engine.work.escalation_timers.rebuild`), and kept by every later save through `process_instance.waiting_escalations`.
`ix_work_item_overdue` serves the heatmap's open steps past due, `ix_notification_delivery_inbox` the bell's
unread count on every page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.storage.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('step_tally',
    sa.Column('process_model_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('season_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('entity', sa.String(length=100), nullable=False),
    sa.Column('track', sa.String(length=20), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('opened', sa.Integer(), nullable=False),
    sa.Column('open_now', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.Column('withdrawn', sa.Integer(), nullable=False),
    sa.Column('late', sa.Integer(), nullable=False),
    sa.Column('reworks', sa.Integer(), nullable=False),
    sa.Column('hours', sa.Float(), nullable=False),
    sa.Column('h00', sa.Integer(), nullable=False),
    sa.Column('h01', sa.Integer(), nullable=False),
    sa.Column('h02', sa.Integer(), nullable=False),
    sa.Column('h03', sa.Integer(), nullable=False),
    sa.Column('h04', sa.Integer(), nullable=False),
    sa.Column('h05', sa.Integer(), nullable=False),
    sa.Column('h06', sa.Integer(), nullable=False),
    sa.Column('h07', sa.Integer(), nullable=False),
    sa.Column('h08', sa.Integer(), nullable=False),
    sa.Column('h09', sa.Integer(), nullable=False),
    sa.Column('h10', sa.Integer(), nullable=False),
    sa.Column('h11', sa.Integer(), nullable=False),
    sa.Column('h12', sa.Integer(), nullable=False),
    sa.Column('h13', sa.Integer(), nullable=False),
    sa.Column('h14', sa.Integer(), nullable=False),
    sa.Column('h15', sa.Integer(), nullable=False),
    sa.Column('h16', sa.Integer(), nullable=False),
    sa.Column('h17', sa.Integer(), nullable=False),
    sa.Column('h18', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('process_model_id', 'season_id', 'element_id', 'entity', 'track', 'opened_on',
                            'due_on', name=op.f('pk_step_tally'))
    )
    with op.batch_alter_table('step_tally', schema=None) as batch_op:
        batch_op.create_index('ix_step_tally_history', ['element_id', 'entity'], unique=False)
    op.create_table('escalation_timer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=100), nullable=False),
    sa.Column('due_at', engine.storage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'],
                            name=op.f('fk_escalation_timer_instance_id_process_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_timer'))
    )
    with op.batch_alter_table('escalation_timer', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_timer_due', ['due_at', 'entity', 'level'], unique=False)
        batch_op.create_index('ix_escalation_timer_entity', ['entity', 'due_at', 'level'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_timer_instance_id'), ['instance_id'], unique=False)
    op.add_column('process_instance', sa.Column('waiting_escalations', sa.String(length=40), nullable=True))
    with op.batch_alter_table('work_item', schema=None) as batch_op:
        batch_op.create_index('ix_work_item_overdue', ['status', 'due_at'], unique=False,
                              postgresql_include=['id', 'element_id', 'assignee_entity', 'created_at'])
    with op.batch_alter_table('notification_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_notification_delivery_inbox', ['user_id', 'channel', 'status'], unique=False)
    _fill(op.get_bind())


def _fill(connection: sa.Connection) -> None:
    from engine.work import escalation_timers, step_figures

    step_figures.recount(connection)
    escalation_timers.rebuild(connection)


def downgrade() -> None:
    with op.batch_alter_table('notification_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_delivery_inbox')
    with op.batch_alter_table('work_item', schema=None) as batch_op:
        batch_op.drop_index('ix_work_item_overdue')
    op.drop_column('process_instance', 'waiting_escalations')  # a plain DROP COLUMN, as 0010 explains
    op.drop_table('escalation_timer')
    op.drop_table('step_tally')
