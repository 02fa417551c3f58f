"""test quarantine and suites split by timing

- test_quarantine: per branch, the tests whose failures do not fail a run (reason, who, passes);
- branch.quarantine_flaky, branch.quarantine_release_after: auto-quarantine and auto-release;
- job.tests_quarantined, run.tests_quarantined: failures of quarantined tests;
- job.split: a part of a job split by timing ("parallel": N).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('test_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('test_case_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('passes', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['test_case_id'], ['test_case.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('branch_id', 'test_case_id', name='uq_test_quarantine')
    )
    with op.batch_alter_table('test_quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_quarantine_test_case_id'), ['test_case_id'], unique=False)
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quarantine_flaky', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('quarantine_release_after', sa.Integer(), nullable=True))
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tests_quarantined', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('split', sa.JSON(), nullable=True))
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tests_quarantined', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_column('tests_quarantined')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('split')
        batch_op.drop_column('tests_quarantined')
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_column('quarantine_release_after')
        batch_op.drop_column('quarantine_flaky')
    with op.batch_alter_table('test_quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_quarantine_test_case_id'))
    op.drop_table('test_quarantine')
