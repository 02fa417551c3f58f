"""Project secrets: create, list, read, update, delete.  Values never leave the server: answers
show ``******`` in their place (the user name of an ssh-key or user-password secret is shown).
Kinds: ``simple`` (``value``), ``ssh-key`` (``user``, ``key``), ``user-password`` (``user``,
``password``); a field of another kind is refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field, model_validator
from sqlmodel import col, select

from kraken.api.authz import maintainer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.models import Project
from kraken.models.base import utcnow
from kraken.models.secrets import Secret
from kraken.schemas.ints import Id
from kraken.secrets import store
from kraken.secrets.refs import MASK, NAME_PATTERN

router = APIRouter(tags=["secrets"])
KIND_FIELDS = {"simple": ("value",), "ssh-key": ("user", "key"), "user-password": ("user", "password")}


class SecretIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    kind: Literal["simple", "ssh-key", "user-password"] = "simple"
    value: str | None = None  # simple
    user: str | None = None  # ssh-key, user-password
    key: str | None = None  # ssh-key
    password: str | None = None  # user-password

    @model_validator(mode="after")
    def _parts(self) -> SecretIn:
        if self.kind == "simple" and self.value is None:
            raise ValueError("a simple secret needs 'value'")
        if self.kind == "ssh-key" and not self.key:
            raise ValueError("an ssh-key secret needs 'key' (and usually 'user')")
        if self.kind == "user-password" and (self.user is None or self.password is None):
            raise ValueError("a user-password secret needs 'user' and 'password'")
        foreign = sorted(
            f
            for f in ("value", "user", "key", "password")
            if getattr(self, f) is not None and f not in KIND_FIELDS[self.kind]
        )
        if foreign:
            raise ValueError(f"a {self.kind} secret has no {', '.join(repr(f) for f in foreign)}")
        return self


class SecretUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    value: str | None = None
    user: str | None = None
    key: str | None = None
    password: str | None = None


class SecretOut(BaseModel):
    id: int
    project_id: int
    name: str
    kind: str
    value: str | None = None
    user: str | None = None
    key: str | None = None
    password: str | None = None
    created: datetime
    updated: datetime


def secret_out(secret: Secret) -> SecretOut:
    assert secret.id is not None
    out = SecretOut(
        id=secret.id,
        project_id=secret.project_id,
        name=secret.name,
        kind=secret.kind,
        created=secret.created,
        updated=secret.updated,
    )
    if secret.kind == "ssh-key":
        out.user = str(store.decode(secret).get("user") or "")
        out.key = MASK
    elif secret.kind == "user-password":
        out.user = str(store.decode(secret).get("user") or "")
        out.password = MASK
    else:
        out.value = MASK
    return out


@router.get(
    "/projects/{project_id}/secrets",
    response_model=list[SecretOut],
    response_model_exclude_none=True,
    dependencies=[maintainer("project_id")],
)
async def list_secrets(project_id: Id, session: SessionDep, _: UserDep) -> list[SecretOut]:
    if await session.get(Project, project_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    rows = await session.execute(select(Secret).where(Secret.project_id == project_id).order_by(col(Secret.name)))
    return [secret_out(s) for s in rows.scalars()]


@router.post(
    "/projects/{project_id}/secrets",
    response_model=SecretOut,
    response_model_exclude_none=True,
    status_code=status.HTTP_201_CREATED,
    dependencies=[maintainer("project_id")],
)
async def create_secret(project_id: Id, body: SecretIn, state: StateDep, _: UserDep) -> SecretOut:
    async with state.write() as (session, _effects):
        if await session.get(Project, project_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
        same = select(Secret.id).where(Secret.project_id == project_id, Secret.name == body.name)
        if (await session.execute(same)).first():
            raise HTTPException(status.HTTP_409_CONFLICT, f"the project has a secret named '{body.name}'")
        secret = Secret(
            project_id=project_id,
            name=body.name,
            kind=body.kind,
            data=store.encode(body.kind, body.value, body.user, body.key, body.password),
        )
        session.add(secret)
        await session.flush()
    store.forget_project(project_id)
    return secret_out(secret)


async def _get(session: Any, secret_id: int) -> Secret:
    secret: Secret | None = await session.get(Secret, secret_id)
    if secret is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"secret {secret_id} not found")
    return secret


@router.get(
    "/secrets/{secret_id}",
    response_model=SecretOut,
    response_model_exclude_none=True,
    dependencies=[maintainer("secret_id")],
)
async def get_secret(secret_id: Id, session: SessionDep, _: UserDep) -> SecretOut:
    return secret_out(await _get(session, secret_id))


@router.put(
    "/secrets/{secret_id}",
    response_model=SecretOut,
    response_model_exclude_none=True,
    dependencies=[maintainer("secret_id")],
)
async def update_secret(secret_id: Id, body: SecretUpdate, state: StateDep, _: UserDep) -> SecretOut:
    async with state.write() as (session, _effects):
        secret = await _get(session, secret_id)
        if body.name is not None and body.name != secret.name:
            taken = await session.execute(
                select(Secret.id).where(Secret.project_id == secret.project_id, Secret.name == body.name)
            )
            if taken.first():
                raise HTTPException(status.HTTP_409_CONFLICT, f"the project has a secret named '{body.name}'")
            secret.name = body.name
        current = store.decode(secret)
        foreign = sorted(
            f
            for f in ("value", "user", "key", "password")
            if getattr(body, f) is not None and f not in KIND_FIELDS.get(secret.kind, ())
        )
        if foreign:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                f"a {secret.kind} secret has no {', '.join(repr(f) for f in foreign)}",
            )
        if secret.kind == "simple":
            value = body.value if body.value is not None else current.get("value")
            secret.data = store.encode("simple", value=value)
        elif secret.kind == "user-password":
            user = body.user if body.user is not None else current.get("user")
            password = body.password if body.password is not None else current.get("password")
            secret.data = store.encode("user-password", user=user, password=password)
        else:
            user = body.user if body.user is not None else current.get("user")
            key = body.key if body.key is not None else current.get("key")
            secret.data = store.encode("ssh-key", user=user, key=key)
        secret.updated = utcnow()
    store.forget_project(secret.project_id)
    return secret_out(secret)


@router.delete(
    "/secrets/{secret_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[maintainer("secret_id")],
)
async def delete_secret(secret_id: Id, state: StateDep, _: UserDep) -> Response:
    async with state.write() as (session, _effects):
        secret = await _get(session, secret_id)
        await session.delete(secret)
    store.forget_project(secret.project_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
