"""Who may do what, decided once for every route.

A user has a role in a project (``viewer`` < ``member`` < ``maintainer``, table
``project_member``); a public project makes every logged-in user at least a viewer; a system
administrator is a maintainer of every project.  Every resource reaches its project through its
path parameter (``flow_id``, ``job_id``, ...: ``PROJECT_OF``), and a route declares what it
needs with one dependency, ``can("flow_id", Role.MEMBER)``:

- no project for that id, or a project the caller cannot see: 404 (as if it did not exist);
- a role below the one needed, or a token without the scope: 403.

A personal access token acts with its owner's role, limited by its scopes: ``read`` for what
viewers may do, ``trigger`` for members, ``write`` for maintainers, ``admin`` for what only
administrators may do.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.api.deps import Principal, PrincipalDep, get_state
from kraken.models import User
from kraken.schemas.ints import Id

if TYPE_CHECKING:
    from kraken.core.db import Database


class Role(IntEnum):
    VIEWER = 1
    MEMBER = 2
    MAINTAINER = 3

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES = tuple(r.label for r in Role)
SCOPE_OF_ROLE = {Role.VIEWER: "read", Role.MEMBER: "trigger", Role.MAINTAINER: "write"}

# path parameter -> (what it names, SQL giving its project's id)
PROJECT_OF: dict[str, tuple[str, str]] = {
    "project_id": ("project", "SELECT id FROM project WHERE id = :i"),
    "branch_id": ("branch", "SELECT project_id FROM branch WHERE id = :i"),
    "stage_id": ("stage", "SELECT b.project_id FROM stage s JOIN branch b ON b.id = s.branch_id WHERE s.id = :i"),
    "flow_id": ("flow", "SELECT b.project_id FROM flow f JOIN branch b ON b.id = f.branch_id WHERE f.id = :i"),
    "run_id": (
        "run",
        "SELECT b.project_id FROM run r JOIN flow f ON f.id = r.flow_id JOIN branch b ON b.id = f.branch_id"
        " WHERE r.id = :i",
    ),
    "job_id": (
        "job",
        "SELECT b.project_id FROM job j JOIN run r ON r.id = j.run_id JOIN flow f ON f.id = r.flow_id"
        " JOIN branch b ON b.id = f.branch_id WHERE j.id = :i",
    ),
    "artifact_id": (
        "artifact",
        "SELECT b.project_id FROM artifact a JOIN branch b ON b.id = a.branch_id WHERE a.id = :i",
    ),
    "secret_id": ("secret", "SELECT project_id FROM secret WHERE id = :i"),
    "entry_id": (
        "cache entry",
        "SELECT b.project_id FROM cache_entry c JOIN branch b ON b.id = c.branch_id WHERE c.id = :i",
    ),
    "test_case_id": ("test case", "SELECT project_id FROM test_case WHERE id = :i"),
}


async def role_in(session: AsyncSession, user: User, project_id: int) -> Role | None:
    """The user's role in the project; None when the user may not see it."""
    if user.is_admin:
        return Role.MAINTAINER
    row = (
        await session.execute(
            sa.text(
                "SELECT p.public, m.role FROM project p LEFT JOIN project_member m"
                " ON m.project_id = p.id AND m.user_id = :u WHERE p.id = :p"
            ),
            {"u": user.id, "p": project_id},
        )
    ).one_or_none()
    if row is None:
        return None
    public, role = row
    if role is not None:
        return Role[str(role).upper()]
    return Role.VIEWER if public else None


async def visible_projects(session: AsyncSession, user: User) -> set[int] | None:
    """The ids of the projects the user can see; None for all of them (administrators)."""
    if user.is_admin:
        return None
    rows = await session.execute(
        sa.text("SELECT id FROM project WHERE public UNION SELECT project_id FROM project_member WHERE user_id = :u"),
        {"u": user.id},
    )
    return {int(r[0]) for r in rows}


async def roles_of(session: AsyncSession, user: User) -> dict[int, Role]:
    """The user's role in every project they can see."""
    if user.is_admin:
        rows = await session.execute(sa.text("SELECT id FROM project"))
        return {int(r[0]): Role.MAINTAINER for r in rows}
    rows = await session.execute(
        sa.text(
            "SELECT p.id, m.role FROM project p LEFT JOIN project_member m ON m.project_id = p.id AND m.user_id = :u"
            " WHERE p.public OR m.role IS NOT NULL"
        ),
        {"u": user.id},
    )
    return {int(pid): Role[str(role).upper()] if role is not None else Role.VIEWER for pid, role in rows}


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the '{scope}' scope")


async def check_project(request: Request, principal: Principal, param: str, value: int, role: Role) -> int:
    """The project id of the resource ``param`` = ``value``, when the caller has ``role`` there."""
    require_scope(principal, SCOPE_OF_ROLE[role])
    what, sql = PROJECT_OF[param]
    async with get_state(request).runtime.db.session(quick=True) as session:
        project_id = (await session.execute(sa.text(sql), {"i": value})).scalar_one_or_none()
        have = None if project_id is None else await role_in(session, principal.user, int(project_id))
    if project_id is None or have is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} {value} not found")
    if have < role:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this needs the {role.label} role in the project (you are {have.label})"
        )
    request.state.project_id = int(project_id)  # for the audit log, known before a deletion
    return int(project_id)


def _project_checker(param: str, role: Role) -> Callable[..., Awaitable[Principal]]:
    if param not in PROJECT_OF:
        raise ValueError(f"no project is known for the path parameter {param!r}")

    async def check(request: Request, principal: Principal, **ids: int) -> Principal:
        await check_project(request, principal, param, ids[param], role)
        return principal

    # FastAPI reads the signature: the path parameter is declared (and validated) by name.
    check.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
            inspect.Parameter("principal", inspect.Parameter.KEYWORD_ONLY, annotation=PrincipalDep),
            inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=Id),
        ]
    )
    return check


def can(param: str, role: Role) -> Any:
    """The dependency of a route on a resource of a project: ``_: Annotated[Principal,
    can("flow_id", Role.MEMBER)]`` (or in ``dependencies=[...]``)."""
    return Depends(_project_checker(param, role))


async def _logged_in(principal: PrincipalDep) -> Principal:
    require_scope(principal, "read")
    return principal


async def _admin(principal: PrincipalDep) -> Principal:
    require_scope(principal, "admin")
    if not principal.user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this is for administrators")
    return principal


LoggedIn = Annotated[Principal, Depends(_logged_in)]
"""Any logged-in user (a token with the ``read`` scope)."""

Admin = Annotated[Principal, Depends(_admin)]
"""A system administrator (a token with the ``admin`` scope)."""


def viewer(param: str) -> Any:
    return can(param, Role.VIEWER)


def member(param: str) -> Any:
    return can(param, Role.MEMBER)


def maintainer(param: str) -> Any:
    return can(param, Role.MAINTAINER)


AdminOnly = Depends(_admin)
LoggedInOnly = Depends(_logged_in)


# the live event stream: which resource an event is about (kind -> its id's path parameter and key)
EVENT_RESOURCE = {
    "flow": ("flow_id", "id"),
    "run": ("run_id", "id"),
    "job": ("job_id", "id"),
    "step": ("job_id", "job_id"),
    # a run's results analysed, its culprit searches and re-analysis: its project's viewers see them
    "results": ("run_id", "run_id"),
    "culprit": ("run_id", "run_id"),
    "reanalysis": ("run_id", "run_id"),
}
EVENT_CACHE_SIZE = 10_000


class EventFilter:
    """Which live events a user may see: those of the projects visible when the stream began
    (a changed role applies when the client subscribes again); agents' events and any other kind
    only for administrators."""

    def __init__(self, db: Database, user: User, visible: set[int] | None) -> None:
        self.db, self.user, self.visible = db, user, visible
        self.project_of: dict[tuple[str, int], int | None] = {}

    @classmethod
    async def for_user(cls, db: Database, user: User) -> EventFilter:
        async with db.session(quick=True) as session:
            return cls(db, user, await visible_projects(session, user))

    async def allows(self, event: dict[str, Any]) -> bool:
        if self.visible is None:
            return True
        resource = EVENT_RESOURCE.get(str(event.get("kind")))
        if resource is None:
            return False
        param, key = resource
        value = event.get(key)
        if not isinstance(value, int):
            return False
        if (param, value) not in self.project_of:
            if len(self.project_of) >= EVENT_CACHE_SIZE:
                self.project_of.clear()
            async with self.db.session(quick=True) as session:
                found = (await session.execute(sa.text(PROJECT_OF[param][1]), {"i": value})).scalar_one_or_none()
            self.project_of[(param, value)] = None if found is None else int(found)
        return self.project_of[(param, value)] in self.visible
