"""Comments on tests: per branch, a state and a thread of Markdown entries, sticky across results.

A comment whose state names a root cause (a bug in the product or in the test) makes the
test's failures on that branch less relevant: someone is on it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field

COMMENT_STATES: tuple[str, ...] = ("new", "investigating", "bug-in-product", "bug-in-test")
ROOT_CAUSE_STATES = frozenset({"bug-in-product", "bug-in-test"})


class TestCaseComment(SQLModel, table=True):
    __tablename__ = "test_case_comment"
    __table_args__ = (sa.UniqueConstraint("test_case_id", "branch_id", name="uq_test_case_comment"),)
    id: int | None = Field(default=None, primary_key=True)
    test_case_id: int = Field(foreign_key="test_case.id", ondelete="CASCADE")
    branch_id: int = Field(foreign_key="branch.id", index=True, ondelete="CASCADE")
    state: str = Field(default="new", max_length=20)
    created: datetime = created_field()
    updated: datetime = created_field()


class TestCaseCommentEntry(SQLModel, table=True):
    """One entry of a comment's thread; ``state`` is the comment's state this entry set."""

    __tablename__ = "test_case_comment_entry"
    id: int | None = Field(default=None, primary_key=True)
    comment_id: int = Field(foreign_key="test_case_comment.id", index=True, ondelete="CASCADE")
    author: str = Field(max_length=200)
    text: str
    state: str = Field(max_length=20)
    created: datetime = created_field()
