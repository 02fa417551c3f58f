"""webhook providers: a project's webhook accepts the deliveries of the forges it is set up for

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-01 14:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing webhooks accept no provider until PUT /api/projects/{id}/webhook names them.
    with op.batch_alter_table('project_webhook', schema=None) as batch_op:
        batch_op.add_column(sa.Column('providers', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('project_webhook', schema=None) as batch_op:
        batch_op.drop_column('providers')
