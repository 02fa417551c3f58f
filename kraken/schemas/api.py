"""Request/response models of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# auth
class LoginIn(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class UserOut(ORM):
    id: int
    username: str
    is_admin: bool


# projects and branches
class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""


class BranchOut(ORM):
    id: int
    project_id: int
    name: str
    branch_name: str
    repo_url: str | None
    ci_flow_seq: int
    dev_flow_seq: int
    created: datetime


class ProjectOut(ORM):
    id: int
    name: str
    description: str
    created: datetime
    branches: list[BranchOut] = []


class BranchIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    branch_name: str = Field(min_length=1, max_length=200)
    repo_url: str | None = None


# stages
class StageIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    schema_code: str
    description: str = ""
    enabled: bool = True


class StageUpdate(BaseModel):
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
    created: datetime
    started: datetime | None
    finished: datetime | None
    jobs_total: int


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
    state: str
    result: str | None
    message: str | None
    exit_code: int | None
    fields: dict[str, Any]
    info: dict[str, Any]
    started: datetime | None
    finished: datetime | None


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


class AgentPatch(BaseModel):
    enabled: bool | None = None
    groups: list[str] | None = None


class AgentTokenOut(BaseModel):
    token: str


