"""test case comments

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 06:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('test_case_comment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('test_case_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['test_case_id'], ['test_case.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('test_case_id', 'branch_id', name='uq_test_case_comment')
    )
    with op.batch_alter_table('test_case_comment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_case_comment_branch_id'), ['branch_id'], unique=False)

    op.create_table('test_case_comment_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('comment_id', sa.Integer(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['test_case_comment.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('test_case_comment_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_case_comment_entry_comment_id'), ['comment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('test_case_comment_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_case_comment_entry_comment_id'))

    op.drop_table('test_case_comment_entry')
    with op.batch_alter_table('test_case_comment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_case_comment_branch_id'))

    op.drop_table('test_case_comment')
