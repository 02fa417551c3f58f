"""Comments on tests, per branch: a state (new, investigating, bug-in-product, bug-in-test) and a
thread of Markdown entries, sticky across the test's results."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.api.authz import member, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.models import Branch
from kraken.models.results import TestCase
from kraken.results import comments
from kraken.schemas.comments import CommentEntryOut, CommentIn, CommentOut
from kraken.schemas.ints import Id

router = APIRouter(tags=["results"])


async def _check(session: AsyncSession, test_case_id: int, branch_id: int) -> None:
    test = await session.get(TestCase, test_case_id)
    if test is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"test case {test_case_id} not found")
    branch = await session.get(Branch, branch_id)
    if branch is None or branch.project_id != test.project_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"branch_id: branch {branch_id} is not a branch of test case {test_case_id}'s project",
        )


async def _out(session: AsyncSession, test_case_id: int, branch_id: int) -> CommentOut:
    comment = await comments.comment_of(session, test_case_id, branch_id)
    if comment is None or comment.id is None:
        return CommentOut(test_case_id=test_case_id, branch_id=branch_id, state=None)
    entries = await comments.entries_of(session, comment.id)
    return CommentOut(
        test_case_id=test_case_id,
        branch_id=branch_id,
        state=comment.state,
        entries=[CommentEntryOut.model_validate(e) for e in entries],
    )


@router.get("/test-cases/{test_case_id}/comments", response_model=CommentOut, dependencies=[viewer("test_case_id")])
async def get_comment(test_case_id: Id, session: SessionDep, _: UserDep, branch_id: Id) -> CommentOut:
    """The test's comment on the branch: its state and its entries, oldest first."""
    await _check(session, test_case_id, branch_id)
    return await _out(session, test_case_id, branch_id)


@router.post(
    "/test-cases/{test_case_id}/comments",
    response_model=CommentOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[member("test_case_id")],
)
async def add_comment(test_case_id: Id, body: CommentIn, state: StateDep, user: UserDep) -> CommentOut:
    """Add an entry to the test's comment on the branch, and set the comment's state if given.
    A root-cause state (bug-in-product, bug-in-test) lowers the relevancy of the test's failures
    on the branch by one point."""
    if not body.text.strip() and body.state is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "text: give a text or a state")
    async with state.write() as (session, _effects):
        await _check(session, test_case_id, body.branch_id)
        await comments.add_entry(session, test_case_id, body.branch_id, user.username, body.text, body.state)
        return await _out(session, test_case_id, body.branch_id)
