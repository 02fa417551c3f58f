"""Response models of routes whose handlers build their answer as a plain dict (health, the
stage checker, webhooks, the agents' cache look-up and save). The models document and check
the answer; fields that are only present in some answers are None there and left out
(``response_model_exclude_none``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HealthOut(BaseModel):
    status: str = Field(description="ok, or degraded (then reason says why)")
    role: str = Field(description="serve, server, controller or worker")
    reason: str | None = Field(None, description="why the server is degraded, e.g. no space left on its data volume")


class StageCheckOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: dict[str, Any] = Field(alias="schema", description="the evaluated and normalised schema")


class WebhookDeliveryOut(BaseModel):
    event: str
    flows: list[int] = Field(description="the flows the delivery started")
    message: str | None = None
    duplicate: bool | None = Field(None, description="true when this delivery was handled before")


class WebhookConfigOut(BaseModel):
    configured: bool
    providers: list[str] = Field(default_factory=list, description="the providers whose deliveries are accepted")
    urls: dict[str, str] = Field(description="the URL to give each provider")
    secret: str | None = Field(None, description="the generated secret, shown once")


class CacheLookupOut(BaseModel):
    hit: bool
    exact: bool | None = Field(None, description="the key itself matched (not one of the prefixes)")
    id: int | None = None
    key: str | None = None
    size: int | None = None
    sha256: str | None = None


class CacheSaveOut(BaseModel):
    saved: bool
    reason: str | None = None
    key: str | None = None
    size: int | None = None
    sha256: str | None = None
    evicted: int | None = Field(None, description="older entries removed to keep the branch under its cap")
