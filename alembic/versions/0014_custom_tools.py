"""custom tools: versioned tool packages registered by administrators

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-01 15:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'custom_tool',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('description', sa.String(length=2000), nullable=False),
        sa.Column('fields_schema', sa.JSON(), nullable=False),
        sa.Column('entry', sa.String(length=1000), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('source', sa.String(length=2000), nullable=False),
        sa.Column('package', sa.LargeBinary(), nullable=False),
        sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', 'version', name='uq_custom_tool_name_version'),
    )
    op.create_index(op.f('ix_custom_tool_name'), 'custom_tool', ['name'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_custom_tool_name'), table_name='custom_tool')
    op.drop_table('custom_tool')
