"""running totals per season, entity and track for the dashboard

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:20:00

The dashboard counted every directive and every acknowledge step of the season on each view: sequential
scans of both tables (tests/test_query_plans.py's last known gap). One row per (season, entity, track) with
the directives active, completed, completed on time, the hours to complete, the acknowledge steps
completed with their hours, and the open escalations by level, kept by engine.directives.directives in the transaction
of each change (engine/directives/tallies.py), replaces those scans. Filled here from the rows. Overdue directives, which change with
the clock, are still counted from the rows: `ix_directive_overdue` covers that count (an index-only scan;
43 ms against 323 ms for 198,189 overdue of 1,000,000 directives).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _hours(dialect: str, start: str, end: str) -> str:
    if dialect == 'postgresql':
        return f"EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0"
    return f"(julianday({end}) - julianday({start})) * 24.0"


def upgrade() -> None:
    op.create_table(
        'tally',
        sa.Column('season_id', sa.Integer(), nullable=False),
        sa.Column('entity', sa.String(length=50), nullable=False),
        sa.Column('track', sa.String(length=20), nullable=False),
        sa.Column('active', sa.Integer(), nullable=False),
        sa.Column('completed', sa.Integer(), nullable=False),
        sa.Column('on_time', sa.Integer(), nullable=False),
        sa.Column('completion_hours', sa.Float(), nullable=False),
        sa.Column('acknowledged', sa.Integer(), nullable=False),
        sa.Column('acknowledge_hours', sa.Float(), nullable=False),
        sa.Column('escalations_1', sa.Integer(), nullable=False),
        sa.Column('escalations_2', sa.Integer(), nullable=False),
        sa.Column('escalations_3', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['season_id'], ['season.id'], name=op.f('fk_tally_season_id_season')),
        sa.PrimaryKeyConstraint('season_id', 'entity', 'track', name=op.f('pk_tally')),
    )
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.create_index('ix_directive_overdue', ['status', 'season_id', 'responsible_entity_id', 'track',
                                                       'deadline_at', 'current_due_at'], unique=False)
    dialect = op.get_bind().dialect.name
    columns = ("INSERT INTO tally (season_id, entity, track, active, completed, on_time, completion_hours, "
               "acknowledged, acknowledge_hours, escalations_1, escalations_2, escalations_3) ")
    op.execute(
        columns +
        "SELECT d.season_id, e.code, d.track, "
        "SUM(CASE WHEN d.status = 'active' THEN 1 ELSE 0 END), SUM(CASE WHEN d.status = 'completed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN d.status = 'completed' AND d.completed_on_time THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN d.status = 'completed' THEN {_hours(dialect, 'd.launched_at', 'd.ended_at')} ELSE 0 END), 0, 0, 0, 0, 0 "
        "FROM directive d JOIN entity e ON e.id = d.responsible_entity_id GROUP BY d.season_id, e.code, d.track"
    )
    op.execute(
        columns +
        "SELECT d.season_id, COALESCE(w.assignee_entity, '-'), d.track, 0, 0, 0, 0, COUNT(*), "
        f"SUM({_hours(dialect, 'w.created_at', 'w.completed_at')}), 0, 0, 0 "
        "FROM work_item w JOIN directive d ON d.instance_id = w.instance_id "
        "WHERE w.element_id = 'acknowledge' AND w.status = 'completed' "
        "GROUP BY d.season_id, COALESCE(w.assignee_entity, '-'), d.track "
        "ON CONFLICT (season_id, entity, track) DO UPDATE SET acknowledged = excluded.acknowledged, "
        "acknowledge_hours = excluded.acknowledge_hours"
    )
    open_at = "SUM(CASE WHEN x.level {} THEN 1 ELSE 0 END)"
    op.execute(
        columns +
        "SELECT d.season_id, COALESCE(x.entity, '-'), d.track, 0, 0, 0, 0, 0, 0, "
        f"{open_at.format('= 1')}, {open_at.format('= 2')}, {open_at.format('>= 3')} "
        "FROM escalation x JOIN directive d ON d.id = x.directive_id WHERE x.status = 'open' "
        "GROUP BY d.season_id, COALESCE(x.entity, '-'), d.track "
        "ON CONFLICT (season_id, entity, track) DO UPDATE SET escalations_1 = excluded.escalations_1, "
        "escalations_2 = excluded.escalations_2, escalations_3 = excluded.escalations_3"
    )


def downgrade() -> None:
    op.drop_table('tally')
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.drop_index('ix_directive_overdue')
