"""Comments on tests: a thread per test and branch, whose state feeds the results' relevancy.

A failure scores one relevancy point when its test has no root-cause comment on its branch
(``kraken.results.analysis`` adds it when results are analysed).  When a comment gains or loses
a root cause, the test's analysed failures on that branch gain or lose that point at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.models.base import utcnow
from kraken.models.comments import ROOT_CAUSE_STATES, TestCaseComment, TestCaseCommentEntry
from kraken.models.results import TestResult
from kraken.results.locks import lock_branch
from kraken.results.statuses import NOT_PASSED


async def comment_of(session: AsyncSession, test_case_id: int, branch_id: int) -> TestCaseComment | None:
    row = await session.execute(
        select(TestCaseComment).where(
            col(TestCaseComment.test_case_id) == test_case_id, col(TestCaseComment.branch_id) == branch_id
        )
    )
    return row.scalar_one_or_none()


async def entries_of(session: AsyncSession, comment_id: int) -> list[TestCaseCommentEntry]:
    rows = await session.execute(
        select(TestCaseCommentEntry)
        .where(col(TestCaseCommentEntry.comment_id) == comment_id)
        .order_by(col(TestCaseCommentEntry.id))
    )
    return list(rows.scalars())


async def add_entry(
    session: AsyncSession, test_case_id: int, branch_id: int, author: str, text: str, state: str | None
) -> TestCaseComment:
    """Add an entry to the test's comment on the branch (created at the first one), maybe setting its state."""
    # an analysis of the branch in flight either commits before this reads and adjusts its results,
    # or starts after this commits and sees the new state
    await lock_branch(session, branch_id)
    comment = await comment_of(session, test_case_id, branch_id)
    if comment is None:
        comment = TestCaseComment(test_case_id=test_case_id, branch_id=branch_id, state=state or "new")
        session.add(comment)
        await session.flush()
        was_root_cause = False
    else:
        was_root_cause = comment.state in ROOT_CAUSE_STATES
        comment.state = state or comment.state
        comment.updated = utcnow()
    assert comment.id is not None
    session.add(TestCaseCommentEntry(comment_id=comment.id, author=author, text=text, state=comment.state))
    is_root_cause = comment.state in ROOT_CAUSE_STATES
    if is_root_cause != was_root_cause:
        await session.execute(
            sa.update(TestResult)
            .where(
                col(TestResult.test_case_id) == test_case_id,
                col(TestResult.branch_id) == branch_id,
                col(TestResult.status).in_(NOT_PASSED),
            )
            .values(relevancy=col(TestResult.relevancy) + (-1 if is_root_cause else 1))
            .execution_options(synchronize_session=False)
        )
    return comment


def root_caused_clause(test_case_column: str, branch_id: int) -> str:
    """SQL that is true when the test in ``test_case_column`` has a root-cause comment on the branch."""
    states = ", ".join(f"'{s}'" for s in sorted(ROOT_CAUSE_STATES))
    return (
        f"EXISTS (SELECT 1 FROM test_case_comment c WHERE c.test_case_id = {test_case_column} "
        f"AND c.branch_id = {int(branch_id)} AND c.state IN ({states}))"
    )
