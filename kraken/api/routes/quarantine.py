"""Quarantined tests of a branch (``kraken.results.quarantine``): their failures do not fail a run.

- ``GET /branches/{id}/quarantine``: the quarantined tests, with reason, who and since when;
- ``POST /branches/{id}/quarantine`` {test_case_id, reason}: quarantine a test (members);
- ``DELETE /branches/{id}/quarantine/{test_case_id}``: release it (members);
- ``GET/PUT /branches/{id}/quarantine-settings``: auto-quarantine of flaky tests and auto-release
  after K passing CI jobs (maintainers).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.api.authz import maintainer, member, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.models import Branch
from kraken.models.quarantine import TestQuarantine
from kraken.models.results import TestCase
from kraken.results import quarantine
from kraken.schemas.ints import Id
from kraken.schemas.quarantine import (
    QuarantineIn,
    QuarantineOut,
    QuarantineReleaseOut,
    QuarantineSettings,
    QuarantineSettingsOut,
)

router = APIRouter(tags=["results"])


async def _branch(session: AsyncSession, branch_id: int) -> Branch:
    branch = await session.get(Branch, branch_id)
    if branch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
    return branch


def _out(q: TestQuarantine, name: str) -> QuarantineOut:
    return QuarantineOut(
        branch_id=q.branch_id,
        test_case_id=q.test_case_id,
        test_name=name,
        reason=q.reason,
        created_by=q.created_by,
        created=q.created,
        passes=q.passes,
    )


@router.get("/branches/{branch_id}/quarantine", response_model=list[QuarantineOut], dependencies=[viewer("branch_id")])
async def list_quarantine(branch_id: Id, session: SessionDep, _: UserDep) -> list[QuarantineOut]:
    await _branch(session, branch_id)
    return [_out(q, name) for q, name in await quarantine.listing(session, branch_id)]


@router.post(
    "/branches/{branch_id}/quarantine",
    response_model=QuarantineOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[member("branch_id")],
)
async def add_quarantine(branch_id: Id, body: QuarantineIn, state: StateDep, user: UserDep) -> QuarantineOut:
    """Quarantine a test on the branch: it still runs and its results are recorded, but its
    failures no longer make a run ``failed`` (a run counts them in ``tests_quarantined``)."""
    async with state.write() as (session, _effects):
        branch = await _branch(session, branch_id)
        test = await session.get(TestCase, body.test_case_id)
        if test is None or test.project_id != branch.project_id:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"test_case_id: test case {body.test_case_id} is not a test of branch {branch_id}'s project",
            )
        row = await quarantine.add(session, branch_id, body.test_case_id, body.reason, user.username)
        return _out(row, test.name)


@router.delete(
    "/branches/{branch_id}/quarantine/{test_case_id}",
    response_model=QuarantineReleaseOut,
    dependencies=[member("branch_id")],
)
async def release_quarantine(branch_id: Id, test_case_id: Id, state: StateDep, _: UserDep) -> QuarantineReleaseOut:
    async with state.write() as (session, _effects):
        await _branch(session, branch_id)
        released = await quarantine.remove(session, branch_id, test_case_id)
    return QuarantineReleaseOut(branch_id=branch_id, test_case_id=test_case_id, released=released)


def _settings(branch: Branch) -> QuarantineSettingsOut:
    assert branch.id is not None
    return QuarantineSettingsOut(
        branch_id=branch.id, quarantine_flaky=branch.quarantine_flaky, release_after=branch.quarantine_release_after
    )


@router.get(
    "/branches/{branch_id}/quarantine-settings",
    response_model=QuarantineSettingsOut,
    dependencies=[viewer("branch_id")],
)
async def get_quarantine_settings(branch_id: Id, session: SessionDep, _: UserDep) -> QuarantineSettingsOut:
    return _settings(await _branch(session, branch_id))


@router.put(
    "/branches/{branch_id}/quarantine-settings",
    response_model=QuarantineSettingsOut,
    dependencies=[maintainer("branch_id")],
)
async def set_quarantine_settings(
    branch_id: Id, body: QuarantineSettings, state: StateDep, _: UserDep
) -> QuarantineSettingsOut:
    """``quarantine_flaky``: the tests a CI job finds flaky are quarantined (by "kraken");
    ``release_after`` = K: a quarantined test is released after K passing CI jobs in a row
    (null: only by hand)."""
    async with state.write() as (session, _effects):
        branch = await _branch(session, branch_id)
        branch.quarantine_flaky = body.quarantine_flaky
        branch.quarantine_release_after = body.release_after
        session.add(branch)
        return _settings(branch)
