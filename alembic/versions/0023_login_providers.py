"""login providers: user.provider ("local", or the provider that created the user, e.g. "ldap"),
user.provider_subject (the OpenID Connect provider's ``sub``)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default='local')
        )
        batch_op.add_column(sa.Column('provider_subject', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('provider_subject')
        batch_op.drop_column('provider')
