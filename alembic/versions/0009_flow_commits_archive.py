"""flow commits, archived projects and branches

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01 14:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('flow', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commits', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('commit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_flow_commit'), ['commit'], unique=False)
    op.execute("UPDATE flow SET commits = '[]'")


def downgrade() -> None:
    with op.batch_alter_table('flow', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flow_commit'))
        batch_op.drop_column('commit')
        batch_op.drop_column('commits')
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_column('archived')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('archived')
