"""test names compare byte-wise on PostgreSQL (collation "C")

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 06:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _name_type(collation: str | None) -> None:
    # SQLite compares text byte-wise already (BINARY); PostgreSQL rebuilds the unique index on (project_id, name)
    if op.get_bind().dialect.name == 'postgresql':
        old = sa.Text() if collation else sa.Text(collation='C')
        op.alter_column('test_case', 'name', existing_type=old, type_=sa.Text(collation=collation),
                        existing_nullable=False)


def upgrade() -> None:
    _name_type('C')


def downgrade() -> None:
    _name_type(None)
