"""culprit search

- culprit_search: per group of a CI run's regressed tests, the range of commits between the last
  CI flow where they passed and the first where they failed, and its bisection (kraken.culprits);
- culprit_setting: per branch, whether culprit finding starts by itself after each CI flow.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'culprit_search',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('stage_id', sa.Integer(), nullable=True),
        sa.Column('tests', sa.JSON(), nullable=True),
        sa.Column('good_commit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('bad_commit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('repo_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column('commits', sa.JSON(), nullable=True),
        sa.Column('lo', sa.Integer(), nullable=False),
        sa.Column('hi', sa.Integer(), nullable=False),
        sa.Column('culprit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('flows', sa.JSON(), nullable=True),
        sa.Column('current_flow_id', sa.Integer(), nullable=True),
        sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('finished', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['run.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['stage_id'], ['stage.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('culprit_search', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_culprit_search_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_culprit_search_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_culprit_search_current_flow_id'), ['current_flow_id'], unique=False)
    op.create_table(
        'culprit_setting',
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('auto', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('branch_id'),
    )


def downgrade() -> None:
    op.drop_table('culprit_setting')
    with op.batch_alter_table('culprit_search', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_culprit_search_current_flow_id'))
        batch_op.drop_index(batch_op.f('ix_culprit_search_branch_id'))
        batch_op.drop_index(batch_op.f('ix_culprit_search_run_id'))
    op.drop_table('culprit_search')
