"""log search

- log_chunk.created: when the server stored the chunk (the time of a search hit);
- PostgreSQL: log_line, the search index's rows, one per log line, filled by a background task
  from log_chunk by a high-water mark (log_index_state), never by the write path; the pg_trgm
  extension and a GIN trigram index on log_line.text (ILIKE substring matches; measured against
  tsvector in docs/benchmarks.md);
- SQLite: nothing more here: its index is a file of its own beside the database, made by the
  indexer (kraken/logs/sqlite_index.py: FTS5 with the trigram tokenizer), so that its writes
  never hold the main file's one writer lock.

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0021'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None



def upgrade() -> None:
    with op.batch_alter_table('log_chunk', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        return
    op.create_table('log_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('flow_id', sa.Integer(), nullable=False),
    sa.Column('step_index', sa.Integer(), nullable=True),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('log_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_line_job_id'), ['job_id'], unique=False)
        batch_op.create_index('ix_log_line_project_id_id', ['project_id', 'id'], unique=False)
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
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.execute('CREATE INDEX ix_log_line_text_trgm ON log_line USING gin (text gin_trgm_ops)')


def downgrade() -> None:
    with op.batch_alter_table('log_chunk', schema=None) as batch_op:
        batch_op.drop_column('created')
    if op.get_bind().dialect.name == 'sqlite':
        return
    op.execute('DROP INDEX IF EXISTS ix_log_line_text_trgm')
    op.drop_table('log_index_state')
    with op.batch_alter_table('log_line', schema=None) as batch_op:
        batch_op.drop_index('ix_log_line_project_id_id')
        batch_op.drop_index(batch_op.f('ix_log_line_job_id'))
    op.drop_table('log_line')
