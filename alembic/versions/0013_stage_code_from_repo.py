"""stage code from a repository

- stage.schema_from_repo, repo_url, repo_branch, schema_file, repo_access_token: a stage's code
  read from a file of a git repository at each run; stage.schema_commit: the commit read when it was saved;
- run.schema_commit: the commit the run's stage code came from.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 15:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('stage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schema_from_repo', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('repo_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('repo_branch', sa.String(length=250), nullable=True))
        batch_op.add_column(sa.Column('schema_file', sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column('repo_access_token', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('schema_commit', sa.String(length=64), nullable=True))
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schema_commit', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_column('schema_commit')
    with op.batch_alter_table('stage', schema=None) as batch_op:
        batch_op.drop_column('schema_commit')
        batch_op.drop_column('repo_access_token')
        batch_op.drop_column('schema_file')
        batch_op.drop_column('repo_branch')
        batch_op.drop_column('repo_url')
        batch_op.drop_column('schema_from_repo')
