"""ORM tables: users, projects, branches, stages, flows, runs, jobs, steps, logs, agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from kraken.models.base import created_field, json_field, utcnow


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=100)
    password_hash: str
    is_admin: bool = False
    # a disabled user cannot log in and every token of theirs stops working at once
    disabled: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # login tokens carry it: raising it (logout, new password, disabling) ends every login session
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # who checks the password: "local" (password_hash) or a login provider ("ldap"), which
    # created the user at their first login and re-sets their roles at each one (docs/auth.md)
    provider: str = Field(default="local", max_length=32, sa_column_kwargs={"server_default": "local"})
    # OpenID Connect: the provider's ``sub`` for this user, fixed at the first login, so that a
    # name the provider gives later to someone else does not open this account to them
    provider_subject: str | None = Field(default=None, max_length=255)
    created: datetime = created_field()


class ServerSecret(SQLModel, table=True):
    """Secrets shared by every server replica (login signing key, agent token)."""

    __tablename__ = "server_secret"
    name: str = Field(primary_key=True, max_length=64)
    value: str


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    description: str = ""
    archived: bool = False  # hidden from lists, no flows start (kraken.control.archive)
    public: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})  # viewer for everyone
    created: datetime = created_field()


class Branch(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)  # display name
    branch_name: str = Field(max_length=200)  # the repository's branch
    repo_url: str | None = None
    ci_flow_seq: int = 0
    dev_flow_seq: int = 0
    run_seq: int = 0
    archived: bool = False
    flow_seq: int = 0  # flows of both kinds (the original's KK_FLOW_SEQ / flow.seq.shared)
    env_vars: dict[str, str] = json_field(dict)  # branch environment variables: #{env.NAME}, the steps' env
    # security policy: a dev flow's jobs (pull requests) may not use the direct executor
    dev_flows_in_containers: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # quarantine (kraken.models.quarantine): tests found flaky are quarantined; a quarantined test is
    # released after this many consecutive passing CI jobs (None: never by itself)
    quarantine_flaky: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    quarantine_release_after: int | None = None
    created: datetime = created_field()


class Stage(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("branch_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    description: str = ""
    enabled: bool = True
    schema_code: str
    schema_: dict[str, Any] = json_field(dict, name="schema")  # evaluated with default args at save time
    parent: str = "root"
    triggers: dict[str, Any] = json_field(dict)
    # the code read from a file of a git repository at each run (kraken.stage.from_repo)
    schema_from_repo: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    repo_url: str | None = Field(default=None, max_length=2000)
    repo_branch: str | None = Field(default=None, max_length=250)
    schema_file: str | None = Field(default=None, max_length=1000)
    repo_access_token: str | None = Field(default=None, max_length=200)  # a project secret's name
    schema_commit: str | None = Field(default=None, max_length=64)  # the commit read when it was saved
    # runs of this stage: of both flow kinds (KK_RUN_SEQ / run.seq.shared), of CI and of DEV flows
    run_seq: int = 0
    ci_run_seq: int = 0
    dev_run_seq: int = 0
    created: datetime = created_field()
    updated: datetime = created_field()


class Flow(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    branch_id: int = Field(foreign_key="branch.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=8)
    seq: int
    state: str = Field(default="queued", max_length=16, index=True)
    result: str | None = Field(default=None, max_length=16)
    args: dict[str, Any] = json_field(dict)
    trigger: dict[str, Any] = json_field(dict)  # how it started: manual (user), webhook, ...
    shared_seq: int | None = None  # the branch's flow_seq for this flow (None: flows made before it existed)
    label: str | None = None  # the first run's ``flow_label``, interpolated
    manual_stages: list[str] = json_field(list)  # manual stages ready to start (their parent passed)
    skipped_stages: list[dict[str, Any]] = json_field(list)  # children not started: {stage_name, run_id, reason}
    # the repository state it ran on (kraken.triggers.commits): from its trigger or its first git checkout
    commits: list[dict[str, Any]] = json_field(list)
    commit: str | None = Field(default=None, max_length=64, index=True)  # the first entry's commit: same_commit
    created: datetime = created_field()
    started: datetime | None = None
    finished: datetime | None = None


class Run(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    flow_id: int = Field(foreign_key="flow.id", index=True, ondelete="CASCADE")
    stage_id: int | None = Field(default=None, foreign_key="stage.id", ondelete="SET NULL")
    stage_name: str = Field(max_length=200)
    seq: int = 0
    state: str = Field(default="queued", max_length=16, index=True)
    result: str | None = Field(default=None, max_length=16)
    reason: str | None = None
    args: dict[str, Any] = json_field(dict)
    schema_: dict[str, Any] = json_field(dict, name="schema")  # evaluated at run start with the run's args
    jobs_total: int = 0
    jobs_error: int = 0
    tests_quarantined: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # its jobs' sum, when it ends
    label: str | None = None  # the stage's ``run_label``, interpolated
    stage_seq: int | None = None  # this run in its stage's runs of its flow kind (``run.seq.own``)
    stage_shared_seq: int | None = None  # ... of every flow kind (``run.seq.shared``)
    schema_commit: str | None = Field(default=None, max_length=64)  # the commit its stage code came from
    evaluated: bool = True  # False until the stage code has been evaluated and the jobs created
    timeout: float | None = None  # the stage's ``timeout``: the run's time limit in seconds
    deadline: datetime | None = Field(default=None, index=True)  # when its open jobs end ``timeout``
    created: datetime = created_field()
    started: datetime | None = None
    finished: datetime | None = None


class Job(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_job_queue", "state", "agent_id"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    state: str = Field(default="queued", max_length=16)
    result: str | None = Field(default=None, max_length=16)
    reason: str | None = None
    agent_id: int | None = Field(default=None, foreign_key="agent.id", ondelete="SET NULL")
    agent_name: str | None = None
    agents_group: str = "all"
    executor: str = "direct"
    system: str = "any"
    config_name: str | None = None
    config: dict[str, Any] | None = json_field(None)
    limits: dict[str, Any] = json_field(dict)
    timeout: float = 3600.0
    covered: bool = False  # superseded by a rerun
    rerun_of: int | None = None
    last_seq: int = 0  # highest agent message applied (exactly-once delivery)
    log_lines: int = 0
    tests_total: int = 0  # kept by result ingestion, read by the run result rule
    tests_failed: int = 0
    tests_quarantined: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # failures of quarantined tests
    # a part of a job split by timing: {"part", "parts", "group" (the job's name), "tests_list"}
    split: dict[str, Any] | None = json_field(None)
    created: datetime = created_field()
    assigned: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None


class Step(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("job_id", "index"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True, ondelete="CASCADE")
    index: int
    tool: str = Field(max_length=100)
    name: str | None = None
    fields: dict[str, Any] = json_field(dict)
    timeout: float | None = None
    when: str | None = None
    attempts: int = 1
    sleep_time_after_attempt: float = 0.0
    state: str = Field(default="queued", max_length=16)
    result: str | None = Field(default=None, max_length=16)
    message: str | None = None
    exit_code: int | None = None
    info: dict[str, Any] = json_field(dict)
    started: datetime | None = None
    finished: datetime | None = None


class LogChunk(SQLModel, table=True):
    """A batch of output lines of one job, as one agent message delivered them."""

    __tablename__ = "log_chunk"
    __table_args__ = (sa.UniqueConstraint("job_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE")
    seq: int
    step_index: int | None = None
    first_line: int  # number of the chunk's first line in the job's log (0-based)
    line_count: int
    text: str  # lines joined with "\n", no trailing newline
    # when the server stored it (the time of a search hit); NULL for chunks stored before 0021
    created: datetime | None = Field(default_factory=utcnow)


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    enabled: bool = True
    connected_to: str | None = None  # the server replica holding its websocket
    last_seen: datetime | None = None
    capabilities: dict[str, Any] = json_field(dict)
    current_job_id: int | None = None
    address: str | None = None
    # enrollment (kraken/control/agents.py): a new agent waits for an administrator's approval;
    # it then authenticates with its own credential, of which the server keeps only a SHA-256
    approved: bool = False
    credential_hash: str | None = Field(default=None, unique=True, index=True, max_length=64)
    requested_groups: list[str] = json_field(list)  # what the agent's --group asked for; never applied by itself
    created: datetime = created_field()


class AgentGroup(SQLModel, table=True):
    __tablename__ = "agent_group"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    created: datetime = created_field()


class AgentGroupLink(SQLModel, table=True):
    __tablename__ = "agent_group_link"
    agent_id: int = Field(foreign_key="agent.id", primary_key=True, ondelete="CASCADE")
    group_id: int = Field(foreign_key="agent_group.id", primary_key=True, ondelete="CASCADE")
