"""results reanalysis

- results_reanalysis: per run, its forced re-analysis as a background task (queued, running,
  done or failed; generation and version), so that a request while one is queued or running
  answers with it instead of starting another (kraken.results.reanalysis).

Revision ID: 0030
Revises: 0027
Create Date: 2026-12-01 21:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0030'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'results_reanalysis',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('requested', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('touched', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('started', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('finished', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('jobs', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['run.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id'),
    )


def downgrade() -> None:
    op.drop_table('results_reanalysis')
