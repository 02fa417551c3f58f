"""Which commit broke a run's regressed tests (``kraken.culprits``, ``docs/culprits.md``).

- ``POST /runs/{id}/culprits`` (member): start culprit finding for the run's regressions (once:
  a run that has searches returns them unchanged); 409 when the run is not a completed,
  analysed CI run;
- ``GET /runs/{id}/culprits`` (viewer): the run's searches;
- ``GET``/``PUT /branches/{id}/culprit-settings``: ``auto`` starts them after every CI flow.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from kraken.api.authz import maintainer, member, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.culprits import search as culprits
from kraken.models import Branch, Run
from kraken.models.culprits import CulpritSearch, CulpritSetting
from kraken.schemas.culprits import CulpritCommitOut, CulpritSearchOut, CulpritSettingIn, CulpritSettingOut
from kraken.schemas.ints import Id

router = APIRouter(tags=["results"])


def _out(s: CulpritSearch) -> CulpritSearchOut:
    info = culprits.commit_info(s)
    return CulpritSearchOut(
        id=int(s.id or 0),
        tests=s.tests,
        good_commit=s.good_commit,
        bad_commit=s.bad_commit,
        culprit=s.culprit,
        culprit_commit=CulpritCommitOut.model_validate(info) if info else None,
        state=s.state,
        reason=s.reason,
        flows=s.flows,
        range_commits=len(s.commits),
        created=s.created,
        finished=s.finished,
    )


@router.get("/runs/{run_id}/culprits", response_model=list[CulpritSearchOut], dependencies=[viewer("run_id")])
async def list_culprits(run_id: Id, session: SessionDep, _: UserDep) -> list[CulpritSearchOut]:
    if await session.get(Run, run_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
    return [_out(s) for s in await culprits.searches_of(session, run_id)]


@router.post("/runs/{run_id}/culprits", response_model=list[CulpritSearchOut], dependencies=[member("run_id")])
async def start_culprits(run_id: Id, state: StateDep, _: UserDep) -> list[CulpritSearchOut]:
    """One search per range of the run's regressed tests: flaky tests get state ``range`` (never
    bisected); the others are bisected by small DEV flows of the run's stage."""
    try:
        async with state.write() as (session, effects):
            if await session.get(Run, run_id) is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} not found")
            found = [_out(s) for s in await culprits.start(session, run_id, effects)]
    except culprits.NotSearchable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return found


@router.get(
    "/branches/{branch_id}/culprit-settings", response_model=CulpritSettingOut, dependencies=[viewer("branch_id")]
)
async def get_culprit_settings(branch_id: Id, session: SessionDep, _: UserDep) -> CulpritSettingOut:
    if await session.get(Branch, branch_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
    return CulpritSettingOut(branch_id=branch_id, auto=await culprits.auto_enabled(session, branch_id))


@router.put(
    "/branches/{branch_id}/culprit-settings", response_model=CulpritSettingOut, dependencies=[maintainer("branch_id")]
)
async def set_culprit_settings(branch_id: Id, body: CulpritSettingIn, state: StateDep, _: UserDep) -> CulpritSettingOut:
    async with state.write() as (session, _effects):
        if await session.get(Branch, branch_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        setting = await session.get(CulpritSetting, branch_id) or CulpritSetting(branch_id=branch_id)
        setting.auto = body.auto
        session.add(setting)
    return CulpritSettingOut(branch_id=branch_id, auto=body.auto)
