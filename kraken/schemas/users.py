"""API shapes of users, project members and personal access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kraken.schemas.ints import Id

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"
RoleName = Literal["viewer", "member", "maintainer"]
Scope = Literal["read", "trigger", "write", "admin"]
MAX_TOKEN_SECONDS = 366 * 24 * 3600


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=100, pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=1024)
    is_admin: bool = False


class UserPatch(Strict):
    """An administrator's change; disabling a user or setting a password ends their sessions."""

    username: str | None = Field(None, min_length=1, max_length=100, pattern=USERNAME_PATTERN)
    password: str | None = Field(None, min_length=8, max_length=1024)
    is_admin: bool | None = None
    disabled: bool | None = None


class OwnPatch(Strict):
    """A user's change of their own account; a new password needs the current one."""

    username: str | None = Field(None, min_length=1, max_length=100, pattern=USERNAME_PATTERN)
    password: str | None = Field(None, min_length=8, max_length=1024)
    current_password: str | None = Field(None, max_length=1024)


class UserFull(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    is_admin: bool
    disabled: bool
    provider: str = Field(description='"local" (a password kept by Kraken) or the login provider, "ldap" or "oidc"')
    created: datetime


class MemberIn(Strict):
    user_id: Id
    role: RoleName


class MemberOut(BaseModel):
    user_id: int
    username: str
    role: RoleName


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=4)
    expires_in: int | None = Field(None, ge=60, le=MAX_TOKEN_SECONDS, description="seconds; none: never expires")


class ApiTokenOut(BaseModel):
    id: int
    name: str
    scopes: list[Scope]
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: bool


class NewApiTokenOut(ApiTokenOut):
    token: str = Field(description="shown only once; Kraken keeps only its hash")


class StreamTokenIn(Strict):
    purpose: Literal["events", "download"] = Field(
        description="events: the live streams (/api/events, a job's log stream); download: logs and artifacts"
    )
    expires_in: int = Field(120, ge=10, le=300, description="seconds the token is good for (10 to 300)")


class StreamTokenOut(BaseModel):
    token: str = Field(description="pass as ?access_token= to a route of the token's purpose only")
    expires_at: datetime
