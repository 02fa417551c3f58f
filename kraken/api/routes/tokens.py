"""Personal access tokens: made by their owner, shown once, stored as a hash, revocable."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Response, status
from sqlmodel import col, select

from kraken.api.authz import LoggedInOnly
from kraken.api.deps import PrincipalDep, SessionDep, StateDep
from kraken.core.security import new_api_token, token_digest
from kraken.models.access import ApiToken
from kraken.models.base import utcnow
from kraken.schemas.ints import Id
from kraken.schemas.users import ApiTokenOut, NewApiTokenOut, TokenIn

router = APIRouter(tags=["tokens"])


def _out(t: ApiToken) -> ApiTokenOut:
    return ApiTokenOut(
        id=t.id or 0,
        name=t.name,
        scopes=t.scopes.split(),
        created=t.created,
        expires=t.expires,
        last_used=t.last_used,
        revoked=t.revoked,
    )


@router.get("/users/me/tokens", response_model=list[ApiTokenOut], dependencies=[LoggedInOnly])
async def list_tokens(session: SessionDep, principal: PrincipalDep) -> list[ApiTokenOut]:
    rows = await session.execute(
        select(ApiToken).where(ApiToken.user_id == principal.user.id).order_by(col(ApiToken.id))
    )
    return [_out(t) for t in rows.scalars()]


@router.post(
    "/users/me/tokens", response_model=NewApiTokenOut, status_code=status.HTTP_201_CREATED, dependencies=[LoggedInOnly]
)
async def create_token(body: TokenIn, state: StateDep, principal: PrincipalDep) -> NewApiTokenOut:
    """The token is in the answer only: Kraken keeps its SHA-256.  A token never has more scopes
    than the credentials that made it; ``admin`` only for administrators."""
    scopes = sorted(set(body.scopes))
    for i, scope in enumerate(body.scopes):
        if scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"scopes[{i}]: your credentials lack '{scope}'")
        if scope == "admin" and not principal.user.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"scopes[{i}]: 'admin' is for administrators")
    token = new_api_token()
    expires = utcnow() + timedelta(seconds=body.expires_in) if body.expires_in is not None else None
    async with state.write() as (session, _effects):
        row = ApiToken(
            user_id=principal.user.id or 0,
            name=body.name,
            token_hash=token_digest(token),
            scopes=" ".join(scopes),
            expires=expires,
        )
        session.add(row)
        await session.flush()
        return NewApiTokenOut(**_out(row).model_dump(), token=token)


@router.delete("/users/me/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[LoggedInOnly])
async def revoke_token(token_id: Id, state: StateDep, principal: PrincipalDep) -> Response:
    """Revokes one of the caller's tokens (it stays listed, revoked)."""
    async with state.write() as (session, _effects):
        row = await session.get(ApiToken, token_id)
        if row is None or row.user_id != principal.user.id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"token {token_id} not found")
        row.revoked = True
    return Response(status_code=status.HTTP_204_NO_CONTENT)
