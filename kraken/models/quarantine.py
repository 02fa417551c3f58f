"""Quarantined tests: per branch, tests whose failures do not fail a run.

A quarantined test still runs and its results are recorded and analysed as any other; only its
failures are counted apart (``Job.tests_quarantined``, ``Run.tests_quarantined``) instead of
making the run ``failed``. The branch's settings (``Branch.quarantine_flaky``,
``Branch.quarantine_release_after``) quarantine tests found flaky and release a test after K
consecutive passing CI jobs (``passes`` counts them since it was quarantined).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field


class TestQuarantine(SQLModel, table=True):
    __tablename__ = "test_quarantine"
    __table_args__ = (sa.UniqueConstraint("branch_id", "test_case_id", name="uq_test_quarantine"),)
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", ondelete="CASCADE")
    test_case_id: int = Field(foreign_key="test_case.id", index=True, ondelete="CASCADE")
    reason: str = Field(default="", max_length=1000)
    created_by: str = Field(max_length=200)  # a user's name, or "kraken" (auto-quarantine of a flaky test)
    created: datetime = created_field()
    passes: int = 0  # consecutive CI jobs where it passed since it was quarantined
