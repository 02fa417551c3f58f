"""agent enrollment: approval, own credential, requested groups

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01 14:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Agents known before enrollment existed have no credential: they enroll again (pending).
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(
            sa.Column('credential_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column('requested_groups', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_agent_credential_hash'), ['credential_hash'], unique=True)
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.alter_column('approved', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_credential_hash'))
        batch_op.drop_column('requested_groups')
        batch_op.drop_column('credential_hash')
        batch_op.drop_column('approved')
