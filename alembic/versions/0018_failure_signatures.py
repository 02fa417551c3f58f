"""failure signatures

- test_result.failure_key: for failed and error results, the hash of the normalised signature of
  their message and traceback (kraken.results.signatures); results analysed before stay NULL;
- partial indexes (failures only) for a run's groups and a cause's history on the branch.

Revision ID: 0018
Revises: 0012
Create Date: 2026-12-01 15:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = 'failure_key IS NOT NULL'


def upgrade() -> None:
    with op.batch_alter_table('test_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_key', sa.String(length=16), nullable=True))
    with op.batch_alter_table('test_result', schema=None) as batch_op:
        batch_op.create_index('ix_test_result_run_failure', ['run_id', 'failure_key', 'id'], unique=False,
                              postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))
        batch_op.create_index('ix_test_result_branch_failure', ['branch_id', 'failure_key', 'flow_id'], unique=False,
                              postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))


def downgrade() -> None:
    with op.batch_alter_table('test_result', schema=None) as batch_op:
        batch_op.drop_index('ix_test_result_branch_failure', postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))
        batch_op.drop_index('ix_test_result_run_failure', postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))
        batch_op.drop_column('failure_key')
