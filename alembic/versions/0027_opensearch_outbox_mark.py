"""the OpenSearch log store's mark on SQLite

log_index_state in SQLite's main file too: the OpenSearch log store (KRAKEN_LOGS_STORE=opensearch)
keeps there, in row 2, the high-water mark of the chunks it copied to OpenSearch, beside the
chunks themselves (its outbox), so that the mark and the deletion of indexed chunks commit
together. PostgreSQL has the table since 0021; SQLite's database index keeps its own in its file.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01 18:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0027'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    op.create_table('log_index_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_chunk_id', sa.Integer(), nullable=False),
    sa.Column('partial_chunk_id', sa.Integer(), nullable=True),
    sa.Column('partial_line', sa.Integer(), nullable=False),
    sa.Column('gaps', sa.JSON(), nullable=True),
    sa.Column('indexed_lines', sa.Integer(), nullable=False),
    sa.Column('updated', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    op.drop_table('log_index_state')
