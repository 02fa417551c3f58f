"""flow semantics: labels, manual and skipped stages, run time limits, step attempts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('flow', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manual_stages', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('skipped_stages', sa.JSON(), nullable=True))
    op.execute(sa.text("UPDATE flow SET manual_stages = '[]', skipped_stages = '[]'"))

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('evaluated', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('timeout', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('deadline', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_run_deadline'), ['deadline'], unique=False)

    with op.batch_alter_table('step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('sleep_time_after_attempt', sa.Float(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('step', schema=None) as batch_op:
        batch_op.drop_column('sleep_time_after_attempt')
        batch_op.drop_column('attempts')

    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_deadline'))
        batch_op.drop_column('deadline')
        batch_op.drop_column('timeout')
        batch_op.drop_column('evaluated')
        batch_op.drop_column('label')

    with op.batch_alter_table('flow', schema=None) as batch_op:
        batch_op.drop_column('skipped_stages')
        batch_op.drop_column('manual_stages')
