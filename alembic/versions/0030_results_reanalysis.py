'''results reanalysis and histogram

- results_hist: per job, how many results have each (status, change, flaky, instability, age):
  the results page counts its age, instability and agents-group filters from it (backfilled
  here from test_result);
- results_reanalysis: per run, its forced re-analysis as a background task (queued, running,
  done or failed; generation and version), so that a request while one is queued or running
  answers with it instead of starting another (kraken.results.reanalysis).

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-01 21:40:00.000000
'''

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0030'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'results_hist',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.SmallInteger(), nullable=False),
        sa.Column('change', sa.SmallInteger(), nullable=False),
        sa.Column('flaky', sa.Boolean(), nullable=False),
        sa.Column('instability', sa.SmallInteger(), nullable=False),
        sa.Column('age', sa.Integer(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['job.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('results_hist', schema=None) as batch_op:
        batch_op.create_index('ix_results_hist_run', ['run_id', 'job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_results_hist_job_id'), ['job_id'], unique=False)
    # the jobs analysed so far: their histogram from their results (one pass over test_result)
    op.execute(
        'INSERT INTO results_hist (job_id, run_id, status, change, flaky, instability, age, n) '
        'SELECT r.job_id, r.run_id, r.status, r.change, r.flaky, r.instability, r.age, count(*) '
        'FROM test_result r JOIN job j ON j.id = r.job_id '
        'GROUP BY r.job_id, r.run_id, r.status, r.change, r.flaky, r.instability, r.age'
    )
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
    with op.batch_alter_table('results_hist', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_results_hist_job_id'))
        batch_op.drop_index('ix_results_hist_run')
    op.drop_table('results_hist')
