"""Request/response models of the REST API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kraken.schemas.commits import RepoStateOut


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# auth
class LoginIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class OidcProviderOut(BaseModel):
    name: str = Field(description='what the login button says: "Log in with <name>"')
    start_url: str = Field(description="where the browser goes to log in (a redirect to the provider)")


class LoginProvidersOut(BaseModel):
    """How one can log in: shown to anonymous callers, so it names no server, no setting."""

    ldap: bool = Field(description="the password form also takes directory (LDAP) users")
    oidc: OidcProviderOut | None = Field(None, description="OpenID Connect login, when configured")


class UserOut(ORM):
    id: int
    username: str
    is_admin: bool
    provider: str = Field(
        "local", description='"local" (a password kept by Kraken) or the login provider, "ldap" or "oidc"'
    )
    roles: dict[str, str] = Field(
        default={}, description="project id -> the caller's role there (administrators: maintainers of all)"
    )


# projects and branches
class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    public: bool = False  # every logged-in user is a viewer


class BranchOut(ORM):
    id: int
    project_id: int
    name: str
    branch_name: str
    repo_url: str | None
    ci_flow_seq: int
    dev_flow_seq: int
    run_seq: int = 0
    archived: bool = False
    env_vars: dict[str, str] = {}
    dev_flows_in_containers: bool = False
    created: datetime


class ProjectOut(ORM):
    id: int
    name: str
    description: str
    archived: bool = False
    public: bool = False
    created: datetime
    branches: list[BranchOut] = []


class BranchSecurityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dev_flows_in_containers: bool = Field(
        description="dev flows (pull requests) may only run jobs in containers (docker, lxd): "
        "a dev-flow job for the direct executor ends with error"
    )


class BranchSecurityOut(BaseModel):
    branch_id: int
    dev_flows_in_containers: bool


class BranchIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    branch_name: str = Field(min_length=1, max_length=200)
    repo_url: str | None = None


ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_ENV_VARS = 200


class BranchUpdate(BaseModel):
    """``PATCH /api/branches/{id}``: the given fields change; ``env_vars`` replaces them all."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    branch_name: str | None = Field(None, min_length=1, max_length=200)
    repo_url: str | None = None
    env_vars: dict[str, str] | None = Field(None, max_length=MAX_ENV_VARS)

    @field_validator("env_vars")
    @classmethod
    def _shell_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, text in (value or {}).items():
            if not re.match(ENV_VAR_NAME, name):
                raise ValueError(f"{name!r} is not an environment variable name (letters, digits and '_')")
            if "\0" in text or len(text) > 32768:
                raise ValueError(f"the value of {name!r} has a NUL character or is longer than 32768 characters")
        return value


# stages
class StageRepoFields(BaseModel):
    """Stage code from a file of a git repository instead of ``schema_code`` (``docs/stages.md``)."""

    schema_from_repo: bool | None = None
    repo_url: str | None = Field(None, max_length=2000)
    repo_branch: str | None = Field(None, max_length=250)
    schema_file: str | None = Field(None, max_length=1000)
    repo_access_token: str | None = Field(None, max_length=200, description="a project secret's name")


class StageIn(StageRepoFields):
    name: str = Field(min_length=1, max_length=200)
    schema_code: str | None = None
    description: str = ""
    enabled: bool = True


class StageUpdate(StageRepoFields):
    schema_code: str | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    enabled: bool | None = None


class StageOut(ORM):
    id: int
    branch_id: int
    name: str
    description: str
    enabled: bool
    schema_code: str
    schema_: dict[str, Any] = Field(serialization_alias="schema")
    parent: str
    triggers: dict[str, Any]
    schema_from_repo: bool = False
    repo_url: str | None = None
    repo_branch: str | None = None
    schema_file: str | None = None
    repo_access_token: str | None = None
    schema_commit: str | None = None  # the commit its file was read from when it was saved
    created: datetime
    updated: datetime


class StageCheckIn(BaseModel):
    schema_code: str


# flows, runs, jobs
class FlowIn(BaseModel):
    kind: Literal["ci", "dev"] = "ci"
    args: dict[str, Any] = {}


class RunBrief(ORM):
    id: int
    stage_name: str
    seq: int
    state: str
    result: str | None
    reason: str | None
    label: str | None = None
    schema_commit: str | None = None  # the commit its stage code came from (stage code from a repository)
    deadline: datetime | None = None  # the run's time limit (its stage's ``timeout``)
    created: datetime
    started: datetime | None
    finished: datetime | None
    jobs_total: int
    tests_quarantined: int = 0  # failures of quarantined tests (they do not make the run fail)


class SkippedStage(BaseModel):
    stage_name: str
    run_id: int  # the parent's run
    reason: str


class FlowOut(ORM):
    id: int
    branch_id: int
    kind: str
    seq: int
    state: str
    result: str | None
    args: dict[str, Any]
    trigger: dict[str, Any]
    label: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None
    runs: list[RunBrief] = []
    commits: list[RepoStateOut] = []  # the repository state it ran on
    manual_stages: list[str] = []  # manual stages whose parent passed: ready to start by hand
    skipped_stages: list[SkippedStage] = []  # child stages that did not start, and why

    @field_validator("manual_stages", "skipped_stages", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class RunStart(BaseModel):
    stage_name: str


class FlowPage(BaseModel):
    total: int
    items: list[FlowOut]


class RunOut(RunBrief):
    flow_id: int
    stage_id: int | None
    args: dict[str, Any]
    jobs_error: int


class StepOut(ORM):
    index: int
    tool: str
    name: str | None
    when: str | None = None
    attempts: int = 1
    state: str
    result: str | None
    message: str | None
    exit_code: int | None
    fields: dict[str, Any]
    info: dict[str, Any]
    started: datetime | None
    finished: datetime | None


class JobSplitOut(BaseModel):
    """A part of a job split by timing (``"parallel": N``)."""

    part: int
    parts: int
    group: str = Field(description="the job's name: every part of it shares it")


class JobOut(ORM):
    id: int
    run_id: int
    name: str
    state: str
    result: str | None
    reason: str | None
    agent_id: int | None
    agent_name: str | None
    agents_group: str
    executor: str
    system: str
    config_name: str | None
    timeout: float
    covered: bool
    rerun_of: int | None
    log_lines: int
    tests_total: int
    tests_failed: int
    tests_quarantined: int = 0
    split: JobSplitOut | None = None
    created: datetime
    assigned: datetime | None
    started: datetime | None
    finished: datetime | None
    steps: list[StepOut] = []


# agents
class AgentOut(BaseModel):
    id: int
    name: str
    online: bool
    enabled: bool
    groups: list[str]
    capabilities: dict[str, Any]
    current_job_id: int | None
    last_seen: datetime | None
    address: str | None
    approved: bool  # False: enrolled, waiting for an administrator (gets no job)
    enrolled: bool  # holds a credential; False after a revoke until it enrolls again
    requested_groups: list[str]  # what the agent's --group asked for; an administrator sets the groups


class AgentPatch(BaseModel):
    enabled: bool | None = None
    groups: list[str] | None = None


class AgentTokenOut(BaseModel):
    token: str
