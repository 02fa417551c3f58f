"""Webhooks: ``POST /api/webhooks/{project_id}/{github|gitlab|gitea|forgejo}``.

Answers: 404 unknown project or provider; 403 the project has no webhook secret, or is not set
up for this provider; 401 missing or bad signature (token for GitLab); 400 unsupported event or
a body that is not JSON; 422 a payload field of the wrong type (its path named); otherwise 200
with the flows started (none for ignored events).  A repeated delivery (the same body, whatever
its delivery id header says) starts nothing again and answers with the flows of the first.

The project's secret and providers: ``PUT /api/projects/{id}/webhook``
(``{"providers": ["github"], "secret": null}``: without a secret one is generated, shown once);
``GET`` tells whether one is set, for which providers, and the URLs to give the forge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.audit import audit_change
from kraken.api.authz import maintainer
from kraken.api.deps import StateDep, UserDep
from kraken.control import orchestration
from kraken.control.archive import active_branch
from kraken.core.security import new_secret
from kraken.core.sql import insert_ignore
from kraken.models import Branch, Project, Stage
from kraken.models.base import utcnow
from kraken.models.enums import FlowKind
from kraken.models.secrets import ProjectWebhook
from kraken.models.triggers import WebhookDelivery
from kraken.schemas.ints import Id
from kraken.schemas.responses import WebhookConfigOut, WebhookDeliveryOut
from kraken.secrets import store as secrets_store
from kraken.triggers.webhooks import (
    PROVIDERS,
    Provider,
    WebhookError,
    WebhookEvent,
    delivery_id,
    event_name,
    parse,
    verify,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


def webhook_stages(stages: Sequence[Stage]) -> list[Stage]:
    """The stages a webhook starts: those with a ``webhook`` trigger, except those that will
    start anyway because an ancestor starts and they follow their parent."""
    chosen = {s.name: s for s in stages if s.enabled and s.triggers.get("webhook")}
    parents = {s.name: s.parent for s in stages}
    by_name = {s.name: s for s in stages}

    def follows_a_chosen_ancestor(stage: Stage) -> bool:
        seen: set[str] = set()
        current = stage
        while current.triggers.get("parent", True) and current.parent in by_name:
            parent = current.parent
            if parent in seen:
                return False
            seen.add(parent)
            if parent in chosen:
                return True
            current = by_name[parent]
        return False

    return [s for name, s in chosen.items() if parents[name] == "root" or not follows_a_chosen_ancestor(s)]


async def _start_flows(session: AsyncSession, project_id: int, event: WebhookEvent, effects: Any) -> list[int]:
    branches = (
        (
            await session.execute(
                select(Branch)
                .where(Branch.project_id == project_id, Branch.branch_name == event.branch, active_branch())
                .order_by(col(Branch.id))
            )
        )
        .scalars()
        .all()
    )
    started = []
    for branch in branches:
        stages = await session.execute(select(Stage).where(Stage.branch_id == branch.id).order_by(col(Stage.id)))
        chosen = webhook_stages(stages.scalars().all())
        if not chosen:
            continue
        flow = await orchestration.create_flow(
            session, branch, FlowKind(event.flow_kind), {}, effects, trigger=event.trigger, start_stages=chosen
        )
        assert flow.id is not None
        started.append(flow.id)
    return started


@router.post("/webhooks/{project_id}/{provider}", response_model=WebhookDeliveryOut, response_model_exclude_none=True)
async def receive(project_id: Id, provider: str, request: Request, state: StateDep) -> dict[str, Any]:
    if provider not in PROVIDERS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown provider {provider!r} (use {', '.join(PROVIDERS)})")
    async with state.runtime.db.session() as session:
        if await session.get(Project, project_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
        hook = await session.get(ProjectWebhook, project_id)
    if hook is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the project has no webhook secret: set one first")
    if provider not in (hook.providers or []):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the project's webhook is not set up for {provider} (it accepts: {', '.join(hook.providers) or 'none'})",
        )
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        verify(provider, headers, body, secrets_store.box().decrypt(hook.secret)["value"])
        name = event_name(provider, headers)
        if not name:
            raise WebhookError(400, "the delivery names no event")
        try:  # orjson: standard JSON only, nesting limited (json.loads recursed until it crashed)
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise WebhookError(400, f"the body is not JSON: {exc}") from None
        event = parse(provider, name, payload)
    except WebhookError as exc:
        log.warning("webhook for project %s (%s) refused: %s", project_id, provider, exc)
        raise HTTPException(exc.status, str(exc)) from exc
    if event.action in ("ping", "ignore"):
        return {"event": name, "flows": [], "message": event.note}
    delivery = delivery_id(body)
    async with state.write() as (session, effects):
        fresh = await insert_ignore(
            session,
            WebhookDelivery,
            {
                "project_id": project_id,
                "provider": provider,
                "delivery_id": delivery,
                "event": name,
                "flows": [],
                "created": utcnow(),
            },
        )
        record = (
            await session.execute(
                select(WebhookDelivery).where(
                    WebhookDelivery.project_id == project_id,
                    WebhookDelivery.provider == provider,
                    WebhookDelivery.delivery_id == delivery,
                )
            )
        ).scalar_one()
        if not fresh:
            return {"event": name, "flows": record.flows, "duplicate": True, "message": "delivery handled before"}
        flows = await _start_flows(session, project_id, event, effects)
        record.flows = flows
    message = f"started {len(flows)} flow(s)" if flows else f"no branch '{event.branch}' with webhook-triggered stages"
    log.info("webhook %s %s for project %s: %s", provider, name, project_id, message)
    return {"event": name, "flows": flows, "message": message}


class WebhookConfigIn(BaseModel):
    providers: list[Provider] = Field(min_length=1, description="the forges whose deliveries are accepted")
    secret: str | None = Field(None, min_length=8, max_length=500)


def _urls(request: Request, project_id: int) -> dict[str, str]:
    base = str(request.base_url).rstrip("/")
    return {p: f"{base}/api/webhooks/{project_id}/{p}" for p in PROVIDERS}


@router.get(
    "/projects/{project_id}/webhook",
    response_model=WebhookConfigOut,
    response_model_exclude_none=True,
    dependencies=[maintainer("project_id")],
)
async def get_webhook(project_id: Id, request: Request, state: StateDep, _: UserDep) -> dict[str, Any]:
    async with state.runtime.db.session() as session:
        if await session.get(Project, project_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
        hook = await session.get(ProjectWebhook, project_id)
    providers = hook.providers if hook is not None else []
    return {"configured": hook is not None, "providers": providers, "urls": _urls(request, project_id)}


@router.put(
    "/projects/{project_id}/webhook",
    response_model=WebhookConfigOut,
    response_model_exclude_none=True,
    dependencies=[maintainer("project_id")],
)
async def set_webhook(
    project_id: Id, body: WebhookConfigIn, request: Request, state: StateDep, _: UserDep
) -> dict[str, Any]:
    """Set the project's webhook secret and the providers it accepts; without a secret a new one is
    generated and shown (once)."""
    secret = body.secret or new_secret()
    providers: list[str] = sorted(set(body.providers))
    token = secrets_store.box().encrypt({"value": secret})
    async with state.write() as (session, _effects):
        if await session.get(Project, project_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
        hook = await session.get(ProjectWebhook, project_id)
        audit_change(  # the secret itself never: only that it was changed
            request,
            {"configured": hook is not None, "providers": list(hook.providers) if hook else []},
            {"configured": True, "providers": providers, "rotated": True},
        )
        if hook is None:
            session.add(ProjectWebhook(project_id=project_id, secret=token, providers=providers))
        else:
            hook.secret, hook.providers = token, providers
    out: dict[str, Any] = {"configured": True, "providers": providers, "urls": _urls(request, project_id)}
    if body.secret is None:
        out["secret"] = secret
    return out
