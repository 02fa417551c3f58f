"""A branch's security policy: where the code of its dev flows (pull requests) may run."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from kraken.api.audit import audit_change
from kraken.api.authz import maintainer, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.models import Branch
from kraken.schemas.api import BranchSecurityIn, BranchSecurityOut
from kraken.schemas.ints import Id

router = APIRouter(tags=["projects"])


@router.get("/branches/{branch_id}/security", response_model=BranchSecurityOut, dependencies=[viewer("branch_id")])
async def get_branch_security(branch_id: Id, session: SessionDep, _: UserDep) -> BranchSecurityOut:
    branch = await session.get(Branch, branch_id)
    if branch is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
    return BranchSecurityOut(branch_id=branch_id, dev_flows_in_containers=branch.dev_flows_in_containers)


@router.put(
    "/branches/{branch_id}/security",
    response_model=BranchSecurityOut,
    dependencies=[maintainer("branch_id")],
)
async def set_branch_security(
    branch_id: Id, body: BranchSecurityIn, request: Request, state: StateDep, user: UserDep
) -> BranchSecurityOut:
    """``dev_flows_in_containers: true``: the jobs of the branch's dev flows must use a container
    executor (docker, lxd); one for the direct executor ends with ``error`` and says why."""
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin may change a branch's security policy")
    async with state.write() as (session, _effects):
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
        audit_change(
            request,
            {"dev_flows_in_containers": branch.dev_flows_in_containers},
            {"dev_flows_in_containers": body.dev_flows_in_containers},
        )
        branch.dev_flows_in_containers = body.dev_flows_in_containers
    return BranchSecurityOut(branch_id=branch_id, dev_flows_in_containers=body.dev_flows_in_containers)
