"""artifact report entry

- artifact.report_entry: the artifact is the entry page of an HTML report (the ``artifacts``
  tool's ``report_entry``); its directory's artifacts of the same run are the report's files,
  served by ``GET /api/runs/{id}/reports/{artifact id}/...``.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01 18:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('artifact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_entry', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('artifact', schema=None) as batch_op:
        batch_op.drop_column('report_entry')
