"""branch environment variables and the original Kraken's sequences

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 14:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAGE_SEQS = ('run_seq', 'ci_run_seq', 'dev_run_seq')


def upgrade() -> None:
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flow_seq', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('env_vars', sa.JSON(), nullable=True))
    op.execute('UPDATE branch SET flow_seq = ci_flow_seq + dev_flow_seq')
    with op.batch_alter_table('flow', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shared_seq', sa.Integer(), nullable=True))
    with op.batch_alter_table('stage', schema=None) as batch_op:
        for name in _STAGE_SEQS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('stage_shared_seq', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_column('stage_shared_seq')
        batch_op.drop_column('stage_seq')
    with op.batch_alter_table('stage', schema=None) as batch_op:
        for name in reversed(_STAGE_SEQS):
            batch_op.drop_column(name)
    with op.batch_alter_table('flow', schema=None) as batch_op:
        batch_op.drop_column('shared_seq')
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_column('env_vars')
        batch_op.drop_column('flow_seq')
