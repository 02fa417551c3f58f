"""Settings for every role; each option also comes from a ``KRAKEN_*`` environment variable."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kraken.notify.targets import DEFAULT_DENY, networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KRAKEN_", extra="ignore")

    data_dir: Path = Field(Path("./kraken-data"), description="where state lives (SQLite, secrets), mode 0700")
    database_url: str | None = Field(None, description="e.g. postgresql+asyncpg://user@host/db; default SQLite")
    redis_url: str | None = Field(None, description="redis://host:6379/0; required for scale-out roles")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None

    admin_password: str | None = None
    agent_token: str | None = Field(None, description="the shared token with which new agents enroll")
    auto_approve: bool = Field(False, description="approve enrolling agents at once: for trusted networks only")
    secret_key: str | None = Field(None, description="signs login tokens; generated and stored if unset")
    access_token_minutes: int = 60 * 8

    # agent
    server: str = "http://127.0.0.1:8080"
    name: str | None = None
    groups: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    limits: list[str] = Field(default_factory=list, description='agent: default container limits, ["memory=1g"]')
    job_user: str | None = Field(
        None,
        description="agent running as root: run direct jobs as this unprivileged user "
        "(kraken serve's local agent: default kraken-job, created when missing)",
    )
    local_agent_dir: Path | None = Field(
        None, description="kraken serve: the local agent's data dir; default <data_dir>-agent, beside the data dir"
    )

    # timing
    heartbeat_interval: float = 5.0
    agent_timeout: float = 20.0  # no heartbeat for this long: the agent is lost
    watchdog_interval: float = 2.0
    assignment_resend_after: float = Field(
        3.0, gt=0, description="an assignment its agent has not accepted is sent again after this many seconds"
    )
    assignment_requeue_after: float = Field(
        10.0, gt=0, description="an assignment its agent has not accepted is taken back and the job queued again"
    )
    default_job_timeout: float = 3600.0
    scheduler_sweep_interval: float = 5.0  # safety net only; assignment is event driven

    log_level: str = "info"

    # secrets (kraken.secrets): the key that encrypts them at rest, outside the database
    secrets_key: str | None = Field(None, description="Fernet key; default: generated once in <data_dir>/secrets.key")

    # artifacts and cache (kraken.artifacts)
    artifacts_store: str = Field("local", description="'local' (under <data_dir>/artifacts) or 's3'")
    artifacts_dir: Path | None = Field(None, description="local store directory; default <data_dir>/artifacts")
    artifacts_max_size: int = Field(10 << 30, description="largest artifact accepted, in bytes")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://minio:9000")
    s3_bucket: str = "kraken"
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_prefix: str = ""
    cache_max_size: int = Field(2 << 30, description="largest cache entry accepted, in bytes")
    cache_branch_max_total: int = Field(10 << 30, description="per branch; least recently used entries go first")
    cache_ttl_days: float = Field(7.0, description="cache entries unused for this long expire")

    # retention (defaults for branches without their own): keep N flows and/or N days
    retention_flows: int | None = Field(None, ge=1, le=1_000_000)
    retention_days: float | None = Field(None, gt=0, le=36_500)
    retention_interval: float = 3600.0

    # planner (kraken.triggers)
    planner_sync_interval: float = Field(5.0, description="safety net: re-read the stages' triggers this often")
    planner_lease: float = 120.0
    repo_poll_interval: float = Field(60.0, description="default period of 'repository' triggers")

    # notifications (kraken.notify)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "kraken@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    slack_webhook_url: str | None = None
    github_api_url: str = "https://api.github.com"
    notify_deny_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DENY),
        description='networks notifications may not reach (JSON list); default loopback, link-local, 0.0.0.0/8',
    )
    notify_allow_networks: list[str] = Field(
        default_factory=list, description='networks allowed even inside a denied one, e.g. ["127.0.0.0/8"]'
    )
    notify_attempts: int = 4
    notify_retry_delay: float = 2.0  # doubled after each failed attempt

    @field_validator("notify_deny_networks", "notify_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks(value)
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "kraken.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path.resolve()}"

    @property
    def effective_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.data_dir / "artifacts"

    @property
    def effective_local_agent_dir(self) -> Path:
        """The local agent's data dir: never inside the server's data dir."""
        data = self.data_dir.resolve()
        chosen = (self.local_agent_dir or data.parent / f"{data.name}-agent").resolve()
        if chosen == data or data in chosen.parents:
            raise ValueError(f"the local agent's data dir {chosen} must be outside the data dir {data}")
        return chosen

    @property
    def sample_repo_dir(self) -> Path:
        """The sample project's repository: in the local agent's data dir, where a job's user can read it."""
        return self.effective_local_agent_dir / "sample-repo"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
