"""Users of a login provider (LDAP, OpenID Connect): created at their first login, their roles re-set at each one.

What the provider decides is only what its mapping names: the administrator flag when admin
groups are configured, and the role in each project that the mapping names (the highest role
any of the user's groups gives there; none: no membership).  Memberships in projects the
mapping does not name are managed by hand (``PUT /api/projects/{id}/members``) and kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.models import Project, User
from kraken.models.access import ProjectMember

log = logging.getLogger(__name__)

RANK = {"viewer": 1, "member": 2, "maintainer": 3}


class NameTaken(Exception):
    """A user of another provider (or a local account) has this name: logging in would take it over."""


@dataclass(frozen=True)
class GroupMapping:
    """Group names (lower case) -> what they give: administrator, and project name -> role."""

    admin_groups: frozenset[str]
    project_roles: Mapping[str, Mapping[str, str]]

    @classmethod
    def of(cls, admin_groups: Iterable[str], group_roles: Mapping[str, Mapping[str, str]]) -> GroupMapping:
        return cls(frozenset(g.lower() for g in admin_groups), {g.lower(): r for g, r in group_roles.items()})

    def is_admin(self, groups: frozenset[str]) -> bool | None:
        """None when no admin groups are configured: the flag is then set by hand."""
        return bool(self.admin_groups & groups) if self.admin_groups else None

    def projects(self) -> set[str]:
        return {name for roles in self.project_roles.values() for name in roles}

    def roles(self, groups: frozenset[str]) -> dict[str, str]:
        """Project name -> the highest role the groups give there."""
        best: dict[str, str] = {}
        for group in groups:
            for project, role in self.project_roles.get(group, {}).items():
                if RANK[role] > RANK.get(best.get(project, ""), 0):
                    best[project] = role
        return best


async def sync_provider_user(
    session: AsyncSession,
    provider: str,
    username: str,
    groups: frozenset[str],
    mapping: GroupMapping,
    subject: str | None = None,
) -> User:
    """The user ``username`` of ``provider``, created when new, with the roles ``groups`` give.
    ``subject`` (OpenID Connect's ``sub``) is recorded at the first login; a later login under the
    same name with another subject is someone else, refused."""
    user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if user is None:
        user = User(username=username, password_hash="", provider=provider, provider_subject=subject)
        session.add(user)
        await session.flush()
    elif user.provider != provider:
        raise NameTaken(f"the name '{username}' belongs to a {user.provider} account")
    elif subject is not None and user.provider_subject not in (None, subject):
        raise NameTaken(f"the name '{username}' belongs to another {provider} user (another subject)")
    elif subject is not None:
        user.provider_subject = subject
    admin = mapping.is_admin(groups)
    if admin is not None:
        user.is_admin = admin
    managed = mapping.projects()
    if managed:
        wanted = mapping.roles(groups)
        rows = await session.execute(select(Project.id, Project.name).where(col(Project.name).in_(managed)))
        ids = {name: pid for pid, name in rows}
        for name in managed - ids.keys():
            log.warning("%s role mapping names the project %r, which does not exist", provider, name)
        assert user.id is not None
        await session.execute(
            sa.delete(ProjectMember).where(
                col(ProjectMember.user_id) == user.id, col(ProjectMember.project_id).in_(list(ids.values()))
            )
        )
        for name, role in wanted.items():
            if name in ids:
                session.add(ProjectMember(project_id=ids[name], user_id=user.id, role=role))
    await session.flush()
    return user
