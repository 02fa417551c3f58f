"""Settings for every role; each option also comes from a ``KRAKEN_*`` environment variable."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KRAKEN_", extra="ignore")

    data_dir: Path = Field(Path("./kraken-data"), description="where state lives (SQLite, secrets, agent work)")
    database_url: str | None = Field(None, description="e.g. postgresql+asyncpg://user@host/db; default SQLite")
    redis_url: str | None = Field(None, description="redis://host:6379/0; required for scale-out roles")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None

    admin_password: str | None = None
    agent_token: str | None = None
    secret_key: str | None = Field(None, description="signs login tokens; generated and stored if unset")
    access_token_minutes: int = 60 * 24

    # agent
    server: str = "http://127.0.0.1:8080"
    name: str | None = None
    groups: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)

    # timing
    heartbeat_interval: float = 5.0
    agent_timeout: float = 20.0  # no heartbeat for this long: the agent is lost
    watchdog_interval: float = 2.0
    default_job_timeout: float = 3600.0
    scheduler_sweep_interval: float = 5.0  # safety net only; assignment is event driven

    log_level: str = "info"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "kraken.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path.resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
