"""Log in; who am I; health."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlmodel import select

from kraken.api.audit import not_audited
from kraken.api.authz import LoggedInOnly, roles_of
from kraken.api.deps import PrincipalDep, SessionDep, StateDep, UserDep
from kraken.api.login_limits import LoginLimits
from kraken.control.provider_users import GroupMapping, NameTaken, sync_provider_user
from kraken.core.security import check_password, create_access_token, create_stream_token
from kraken.models import User
from kraken.schemas.api import LoginIn, TokenOut, UserOut
from kraken.schemas.responses import HealthOut
from kraken.schemas.users import StreamTokenIn, StreamTokenOut

router = APIRouter(tags=["auth"])
log = logging.getLogger(__name__)
WRONG = "wrong username or password"


async def _ldap_user(state: StateDep, username: str, password: str) -> User | None:
    """The LDAP user, created or with their roles re-set from their groups; None: wrong name or password."""
    # ldap3 only where LDAP is used: an idle server does not load it (tests/unit/test_idle_imports.py)
    from kraken.core.ldap_auth import LdapUnavailable, authenticate

    settings = state.runtime.settings
    try:
        identity = await asyncio.to_thread(authenticate, settings, username, password)
    except LdapUnavailable as exc:
        log.error("LDAP login of %r: %s", username, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the LDAP server cannot be used now: try again later"
        ) from exc
    if identity is None:
        return None
    mapping = GroupMapping.of(settings.ldap_admin_groups, settings.ldap_group_roles)
    try:
        async with state.write() as (session, _effects):
            return await sync_provider_user(session, "ldap", identity.username, identity.groups, mapping)
    except NameTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc}: an administrator must rename one of them") from exc


@router.post("/auth/login", response_model=TokenOut)
async def login(body: LoginIn, request: Request, session: SessionDep, state: StateDep) -> TokenOut:
    """A local account's password, or the LDAP directory's for everyone else when LDAP is
    configured (``docs/auth.md``).  Rate-limited per client address and per user name: after a
    few failures each further attempt waits longer (429 with ``Retry-After``).  503 when the LDAP
    server cannot be used."""
    limits: LoginLimits = request.app.state.login_limits
    address = request.client.host if request.client else "?"
    wait = limits.retry_after(address, body.username)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins: try again in {wait} s",
            {"Retry-After": str(wait)},
        )
    settings = state.runtime.settings
    user = (await session.execute(select(User).where(User.username == body.username))).scalar_one_or_none()
    if user is not None and user.provider == "local":
        ok = settings.allows_local(user.username)
        if not await check_password(body.password, user.password_hash) or not ok:
            limits.failed(address, body.username)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG)
    elif settings.ldap_url is not None and (user is None or user.provider == "ldap"):
        user = await _ldap_user(state, body.username, body.password)
        if user is None:
            limits.failed(address, body.username)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG)
    else:  # no such user, or one of a provider that is not configured (any more)
        await check_password(body.password, None)
        limits.failed(address, body.username)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG)
    if user.disabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the user is disabled")
    limits.succeeded(body.username)
    minutes = state.runtime.settings.access_token_minutes
    token = create_access_token(user.username, state.secret_key, minutes, user.token_generation)
    return TokenOut(access_token=token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, dependencies=[LoggedInOnly])
async def logout(state: StateDep, principal: PrincipalDep) -> Response:
    """Ends every login session of the caller (their login tokens carry a generation, raised here);
    personal access tokens are revoked one by one (``DELETE /api/users/me/tokens/{id}``)."""
    async with state.write() as (session, _effects):
        user = await session.get(User, principal.user.id)
        if user is not None:
            user.token_generation += 1
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/stream-token", response_model=StreamTokenOut, dependencies=[LoggedInOnly])
@not_audited
async def stream_token(body: StreamTokenIn, state: StateDep, principal: PrincipalDep) -> StreamTokenOut:
    """A short-lived token for the address of a live stream (``events``) or a download
    (``download``), bound to the caller: it ends with their session (logout, a new password, a
    disabled user) or with the personal access token that made it, and reads only."""
    if principal.stream:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a stream token cannot make another")
    token, expires = create_stream_token(
        principal.user.username,
        state.secret_key,
        body.purpose,
        body.expires_in,
        principal.user.token_generation,
        principal.token_id,
    )
    return StreamTokenOut(token=token, expires_at=expires)


@router.get("/auth/me", response_model=UserOut)
async def me(user: UserDep, session: SessionDep) -> UserOut:
    """The caller, with their role in each project they can see (public ones: viewer), so that a
    client offers only what the role allows."""
    out = UserOut.model_validate(user)
    out.roles = {str(project_id): role.label for project_id, role in (await roles_of(session, user)).items()}
    return out


@router.get("/health", response_model=HealthOut, response_model_exclude_none=True, tags=["health"])
async def health(state: StateDep) -> HealthOut:
    """Anonymous: says nothing about the machine (no host name, no process id).  ``degraded``
    with a ``reason`` when the server's data volume (its SQLite database, its local artifact
    store) has no space left (``kraken/core/diskspace.py``)."""
    settings = state.runtime.settings
    local = (settings.effective_artifacts_dir,) if settings.artifacts_store == "local" else ()
    space = await asyncio.to_thread(state.runtime.db.disk.status, local)
    if space.full:
        return HealthOut(status="degraded", role=state.runtime.role, reason=space.reason)
    return HealthOut(status="ok", role=state.runtime.role)
