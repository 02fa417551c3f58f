"""log search

- log_chunk.created: when the server stored the chunk (the time of a search hit);
- log_line: the search index's rows, one per log line, filled by a background task from
  log_chunk by a high-water mark (log_index_state), never by the write path;
- SQLite: log_line_fts, an FTS5 table (trigram tokenizer: substring matches) with log_line as
  its external content, kept in step by triggers on log_line;
- PostgreSQL: the pg_trgm extension and a GIN trigram index on log_line.text (ILIKE substring
  matches; measured against tsvector in docs/benchmarks.md).

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

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE log_line_fts USING fts5(text, content='log_line', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER log_line_ai AFTER INSERT ON log_line BEGIN"
    " INSERT INTO log_line_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER log_line_ad AFTER DELETE ON log_line BEGIN"
    " INSERT INTO log_line_fts(log_line_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
]


def upgrade() -> None:
    with op.batch_alter_table('log_chunk', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
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
    sa.Column('gaps', sa.JSON(), nullable=True),
    sa.Column('indexed_lines', sa.Integer(), nullable=False),
    sa.Column('updated', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    if op.get_bind().dialect.name == 'sqlite':
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_log_line_text_trgm ON log_line USING gin (text gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('DROP TRIGGER IF EXISTS log_line_ad')
        op.execute('DROP TRIGGER IF EXISTS log_line_ai')
        op.execute('DROP TABLE IF EXISTS log_line_fts')
    else:
        op.execute('DROP INDEX IF EXISTS ix_log_line_text_trgm')
    op.drop_table('log_index_state')
    with op.batch_alter_table('log_line', schema=None) as batch_op:
        batch_op.drop_index('ix_log_line_project_id_id')
        batch_op.drop_index(batch_op.f('ix_log_line_job_id'))
    op.drop_table('log_line')
    with op.batch_alter_table('log_chunk', schema=None) as batch_op:
        batch_op.drop_column('created')
