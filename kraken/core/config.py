"""Settings for every role; each option also comes from a ``KRAKEN_*`` environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kraken.notify.targets import DEFAULT_DENY, networks

LDAP_NEEDS = ("ldap_bind_dn", "ldap_bind_password", "ldap_user_base")
OIDC_NEEDS = ("oidc_client_id", "oidc_client_secret", "public_url")
Role = Literal["viewer", "member", "maintainer"]


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

    # login providers (docs/auth.md)
    local_accounts: bool = Field(
        True, description="false: password accounts stored in Kraken cannot log in (but the break-glass ones)"
    )
    local_break_glass: list[str] = Field(
        default_factory=list, description='local accounts that may log in when local_accounts is false, ["admin"]'
    )
    ldap_url: str | None = Field(None, description="ldap://host:389 or ldaps://host:636; unset: no LDAP login")
    ldap_bind_dn: str | None = Field(None, description="the service account that searches for users")
    ldap_bind_password: SecretStr | None = Field(None, description="the service account's password")
    ldap_user_base: str | None = Field(None, description="where users are searched, e.g. ou=people,dc=example,dc=org")
    ldap_user_filter: str = Field("(uid={username})", description="{username} is replaced, escaped")
    ldap_username_attribute: str = Field("uid", description="the user entry's attribute that names the Kraken user")
    ldap_group_base: str | None = Field(None, description="where groups are searched; unset: groups give no roles")
    ldap_group_filter: str = Field(
        "(|(member={dn})(uniqueMember={dn}))", description="a user's groups; {dn} and {username} are replaced, escaped"
    )
    ldap_group_name_attribute: str = Field("cn", description="the group attribute that the mappings name")
    ldap_admin_groups: list[str] = Field(
        default_factory=list, description="members of these groups are system administrators (re-read at each login)"
    )
    ldap_group_roles: dict[str, dict[str, Role]] = Field(
        default_factory=dict,
        description='group -> {project name: role}, e.g. {"developers": {"kraken": "member"}} (re-read at each login)',
    )
    ldap_timeout: int = Field(10, ge=1, le=120, description="seconds to connect and for each answer")
    oidc_issuer: str | None = Field(
        None, description="the provider's issuer URL (<issuer>/.well-known/openid-configuration); unset: no OIDC"
    )
    oidc_client_id: str | None = Field(None, description="Kraken's client id at the provider")
    oidc_client_secret: SecretStr | None = Field(None, description="Kraken's client secret at the provider")
    oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"], description="scopes asked for; must hold openid"
    )
    oidc_username_claim: str = Field("preferred_username", description="the claim that names the Kraken user")
    oidc_groups_claim: str = Field("groups", description="the claim (a list of names) that the mappings read")
    oidc_admin_groups: list[str] = Field(
        default_factory=list, description="values of the groups claim that make system administrators"
    )
    oidc_group_roles: dict[str, dict[str, Role]] = Field(
        default_factory=dict, description="group -> {project name: role} (re-read at each login)"
    )
    oidc_display_name: str = Field(
        "OpenID Connect", min_length=1, max_length=60, description='the login button says "Log in with <this>"'
    )
    oidc_timeout: int = Field(10, ge=1, le=120, description="seconds for each request to the provider")

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
    task_lease: float = Field(
        15.0,
        ge=2,
        le=300,
        description="kraken worker holds a task it runs for this many seconds, renewed while it runs: "
        "a task whose worker died is run by another worker once it lapses",
    )

    log_level: str = "info"
    # Kraken's own logs on stderr: "text" or "json" (one JSON object a line; kraken.observability.servicelog)
    log_format: Literal["text", "json"] = "text"

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

    # log search (kraken.logs): the index is filled this often from the stored lines
    log_index_interval: float = Field(1.0, gt=0, le=3600, description="seconds between log indexing passes")
    # where job logs live (kraken.logs): "database", or "opensearch" (docs/logs.md)
    logs_store: Literal["database", "opensearch"] = "database"
    opensearch_url: str | None = Field(None, description="http(s)://host:9200 (KRAKEN_LOGS_STORE=opensearch)")
    opensearch_index_prefix: str = Field("kraken-logs", pattern=r"^[a-z0-9][a-z0-9_-]{0,100}$")
    opensearch_retention_months: int | None = Field(None, ge=1, le=1200, description="monthly indices kept")
    opensearch_keep_hours: float = Field(
        24.0, ge=0, le=24 * 365, description="indexed lines also stay in the database this long (read when down)"
    )
    # Kraken's own logs into the log store too, searchable with service= (kraken.logs.servicelogs, docs/logs.md)
    service_logs_store: bool = Field(False, description="every role stores its own log records in the log store")
    service_logs_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="the least level of the records stored"
    )
    service_logs_retention_days: float = Field(14.0, gt=0, le=36_500, description="stored records older are deleted")
    service_logs_buffer: int = Field(
        10_000, ge=100, le=1_000_000, description="records waiting in memory at most; past it the oldest are dropped"
    )

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
        description="networks notifications may not reach (JSON list); default loopback, link-local, 0.0.0.0/8",
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

    @model_validator(mode="after")
    def _opensearch_complete(self) -> Settings:
        """The OpenSearch settings are used by the OpenSearch store only: given without it, refused."""
        if self.logs_store == "opensearch":
            if not self.opensearch_url:
                raise ValueError("opensearch_url: needed by logs_store=opensearch (KRAKEN_OPENSEARCH_URL)")
            if not self.opensearch_url.startswith(("http://", "https://")):
                raise ValueError("opensearch_url: not an http:// or https:// URL")
            return self
        unused = ("opensearch_url", "opensearch_retention_months", "opensearch_index_prefix", "opensearch_keep_hours")
        given = [name for name in unused if name in self.model_fields_set]
        if given:
            raise ValueError(f"{given[0]}: used only with logs_store=opensearch (KRAKEN_LOGS_STORE=opensearch)")
        return self

    @model_validator(mode="after")
    def _service_logs_complete(self) -> Settings:
        """The service_logs_* settings without the option would do nothing: refused."""
        if not self.service_logs_store:
            unused = ("service_logs_level", "service_logs_retention_days", "service_logs_buffer")
            given = [name for name in unused if name in self.model_fields_set]
            if given:
                raise ValueError(f"{given[0]}: used only with service_logs_store=true (KRAKEN_SERVICE_LOGS_STORE)")
        return self

    @model_validator(mode="after")
    def _ldap_complete(self) -> Settings:
        """LDAP settings without a server, or a server without what a login needs, are refused at start."""
        if self.ldap_url is None:
            given = [name for name in LDAP_NEEDS if getattr(self, name) is not None]
            if given or self.ldap_admin_groups or self.ldap_group_roles:
                raise ValueError("ldap_url: needed by the other ldap_* settings (KRAKEN_LDAP_URL)")
            return self
        if not self.ldap_url.startswith(("ldap://", "ldaps://")):
            raise ValueError(f"ldap_url: {self.ldap_url!r} is not an ldap:// or ldaps:// URL")
        missing = [name for name in LDAP_NEEDS if getattr(self, name) is None]
        if missing:
            needed = ", ".join(f"KRAKEN_{m.upper()}" for m in missing)
            raise ValueError(f"ldap_url is set, so these are needed too: {needed}")
        if (self.ldap_admin_groups or self.ldap_group_roles) and self.ldap_group_base is None:
            raise ValueError(
                "ldap_group_base: needed by ldap_admin_groups and ldap_group_roles (KRAKEN_LDAP_GROUP_BASE)"
            )
        if "{username}" not in self.ldap_user_filter:
            raise ValueError("ldap_user_filter: must contain {username}")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        """OIDC settings without an issuer, or an issuer without what a login needs, are refused at start."""
        if self.oidc_issuer is None:
            if (
                self.oidc_client_id is not None
                or self.oidc_client_secret is not None
                or self.oidc_admin_groups
                or self.oidc_group_roles
            ):
                raise ValueError("oidc_issuer: needed by the other oidc_* settings (KRAKEN_OIDC_ISSUER)")
            return self
        url = urlsplit(self.oidc_issuer)
        local = url.hostname in ("127.0.0.1", "localhost", "::1")
        if (url.scheme != "https" and not (url.scheme == "http" and local)) or not url.hostname or url.query:
            raise ValueError(f"oidc_issuer: {self.oidc_issuer!r} is not an https:// URL (http:// only for localhost)")
        missing = [name for name in OIDC_NEEDS if getattr(self, name) is None]
        if missing:
            needed = ", ".join(f"KRAKEN_{m.upper()}" for m in missing)
            raise ValueError(f"oidc_issuer is set, so these are needed too: {needed}")
        assert self.public_url is not None
        if urlsplit(self.public_url).scheme not in ("http", "https") or not urlsplit(self.public_url).hostname:
            raise ValueError(f"public_url: {self.public_url!r} is not an http(s):// URL (the OIDC redirect URL)")
        if "openid" not in self.oidc_scopes:
            raise ValueError("oidc_scopes: must hold openid")
        return self

    @property
    def oidc_redirect_url(self) -> str:
        """Where the provider sends the browser back: register this URL at the provider."""
        return f"{(self.public_url or '').rstrip('/')}/api/auth/oidc/callback"

    def allows_local(self, username: str) -> bool:
        """Whether the local (password) account ``username`` may log in and act: unless local
        accounts are turned off, or it is a break-glass account."""
        return self.local_accounts or username in self.local_break_glass

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
