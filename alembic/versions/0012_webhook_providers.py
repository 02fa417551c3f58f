"""webhook providers and dev flows' own cache entries

- project_webhook.providers: a project's webhook accepts the deliveries of the forges it is set up for;
- cache_entry.dev_flow_id: 0 for the branch's entries (CI flows), else the dev flow that owns the entry.

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-01 14:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The unique constraint of 0003 has no name: PostgreSQL named it, SQLite's batch mode needs a convention.
OLD_UNIQUE = {'postgresql': 'cache_entry_branch_id_key_key', 'sqlite': 'uq_cache_entry_branch_id'}
CONVENTION = {'uq': 'uq_%(table_name)s_%(column_0_name)s'}


def upgrade() -> None:
    # Existing webhooks accept no provider until PUT /api/projects/{id}/webhook names them.
    with op.batch_alter_table('project_webhook', schema=None) as batch_op:
        batch_op.add_column(sa.Column('providers', sa.JSON(), nullable=True))
    old = OLD_UNIQUE[op.get_bind().dialect.name]
    with op.batch_alter_table('cache_entry', schema=None, naming_convention=CONVENTION) as batch_op:
        batch_op.add_column(sa.Column('dev_flow_id', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_constraint(old, type_='unique')
        batch_op.create_unique_constraint('uq_cache_entry_scope_key', ['branch_id', 'dev_flow_id', 'key'])


def downgrade() -> None:
    op.execute('DELETE FROM cache_entry WHERE dev_flow_id <> 0')
    with op.batch_alter_table('cache_entry', schema=None, naming_convention=CONVENTION) as batch_op:
        batch_op.drop_constraint('uq_cache_entry_scope_key', type_='unique')
        batch_op.create_unique_constraint(OLD_UNIQUE[op.get_bind().dialect.name], ['branch_id', 'key'])
        batch_op.drop_column('dev_flow_id')
    with op.batch_alter_table('project_webhook', schema=None) as batch_op:
        batch_op.drop_column('providers')
