"""login attempts counted by address too

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 04:40:00

The sign-in throttle counted failures per username only, so anyone could lock a user out by failing to
sign in as them. It now also counts per address (engine/people/login_attempts.py), which this index serves.
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_client_at', ['client', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_client_at')
