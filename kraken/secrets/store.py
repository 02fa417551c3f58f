"""Secrets in the database: read them decrypted for a project or a job, mask a job's output."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.core.config import Settings
from kraken.models import Branch, Flow, Job, Run, Step
from kraken.models.secrets import Secret
from kraken.secrets.crypto import SecretBox, secret_box
from kraken.secrets.refs import Masker, secret_values, step_secret_names

KINDS = ("simple", "ssh-key", "user-password")

_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Tell this process where its secrets key is (``Runtime`` calls it for every role)."""
    global _settings
    _settings = settings


def box() -> SecretBox:
    global _settings
    if _settings is None:
        _settings = Settings()
    return secret_box(_settings)


def encode(
    kind: str, value: str | None = None, user: str | None = None, key: str | None = None, password: str | None = None
) -> str:
    data: dict[str, Any]
    if kind == "simple":
        data = {"value": value or ""}
    elif kind == "user-password":
        data = {"user": user or "", "password": password or ""}
    else:
        data = {"user": user or "", "key": key or ""}
    return box().encrypt(data)


def decode(secret: Secret) -> dict[str, Any]:
    return {"kind": secret.kind, **box().decrypt(secret.data)}


async def project_secrets(
    session: AsyncSession, project_id: int, names: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """``{name: {"kind", "value"} | {"kind", "user", "key"}}``, decrypted (only ``names`` if given)."""
    q = select(Secret).where(Secret.project_id == project_id)
    if names is not None:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        q = q.where(col(Secret.name).in_(wanted))
    return {s.name: decode(s) for s in (await session.execute(q)).scalars()}


async def project_secret_kinds(session: AsyncSession, project_id: int) -> dict[str, str]:
    """``{name: kind}`` of a project's secrets (nothing decrypted)."""
    rows = await session.execute(select(Secret.name, Secret.kind).where(Secret.project_id == project_id))
    return {name: kind for name, kind in rows.all()}


async def project_secret_names(session: AsyncSession, project_id: int) -> list[str]:
    rows = await session.execute(select(Secret.name).where(Secret.project_id == project_id).order_by(Secret.name))
    return list(rows.scalars())


async def project_of_job(session: AsyncSession, job_id: int) -> int | None:
    row = await session.execute(
        sa.select(col(Branch.project_id))
        .join(Flow, col(Flow.branch_id) == Branch.id)
        .join(Run, col(Run.flow_id) == Flow.id)
        .join(Job, col(Job.run_id) == Run.id)
        .where(col(Job.id) == job_id)
    )
    return row.scalar_one_or_none()


def names_in_steps(steps: Iterable[tuple[str, dict[str, Any]]]) -> set[str]:
    names: set[str] = set()
    for tool, fields in steps:
        names |= step_secret_names(tool, fields)
    return names


async def job_secrets(session: AsyncSession, job_id: int, steps: Iterable[Step] | None = None) -> dict[str, Any]:
    """The secrets the job's steps refer to (only these are sent to its agent)."""
    if steps is None:
        steps = (await session.execute(select(Step).where(Step.job_id == job_id))).scalars().all()
    names = names_in_steps((s.tool, s.fields) for s in steps)
    if not names:
        return {}
    project_id = await project_of_job(session, job_id)
    return await project_secrets(session, project_id, names) if project_id is not None else {}


# A job's masker is computed once per process (log batches arrive many times a second).
_MASKERS: OrderedDict[int, tuple[float, Masker]] = OrderedDict()
_MASKER_TTL = 300.0
_MASKERS_MAX = 2000


async def job_masker(session: AsyncSession, job_id: int) -> Masker:
    hit = _MASKERS.get(job_id)
    if hit is not None and time.monotonic() - hit[0] < _MASKER_TTL:
        _MASKERS.move_to_end(job_id)
        return hit[1]
    return remember_job_secrets(job_id, await job_secrets(session, job_id))


def remember_job_secrets(job_id: int, secrets: dict[str, Any]) -> Masker:
    """Cache the masker of the secrets a job was given (when it is assigned, so its output
    needs no lookup in this process)."""
    masker = Masker(v for s in secrets.values() for v in secret_values(s))
    _MASKERS[job_id] = (time.monotonic(), masker)
    while len(_MASKERS) > _MASKERS_MAX:
        _MASKERS.popitem(last=False)
    return masker


def forget_project(project_id: int | None = None) -> None:
    """Drop cached maskers (a secret changed)."""
    _MASKERS.clear()
