"""The metrics endpoint's settings (``KRAKEN_METRICS_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KRAKEN_METRICS_", extra="ignore")

    token: str | None = Field(None, description="when set, GET /metrics needs 'Authorization: Bearer <token>'")
    port: int | None = Field(
        None, ge=0, le=65535, description="kraken controller / worker: serve /metrics on this port (off when unset)"
    )
    host: str = Field("127.0.0.1", description="kraken controller / worker: the metrics listener's address")
