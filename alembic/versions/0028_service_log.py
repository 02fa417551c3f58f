"""service logs in the log store

PostgreSQL: service_log, the log records of Kraken's own processes (KRAKEN_SERVICE_LOGS_STORE),
written in batches by a background flusher in each role; a GIN trigram index on its text as on
log_line.text, so service= searches have the job search's substring semantics. SQLite: nothing
here: the table lives in the log search's own file (kraken/logs/sqlite_index.py) with an FTS5
trigram index, so that its writes never hold the main file's one writer lock.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-01 21:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.create_table(
        "service_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("service", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("logger", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("flow_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("service_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_log_created"), ["created"], unique=False)
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_service_log_text_trgm ON service_log USING gin (text gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("DROP INDEX IF EXISTS ix_service_log_text_trgm")
    with op.batch_alter_table("service_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_log_created"))
    op.drop_table("service_log")
