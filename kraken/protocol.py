"""The language agents and servers speak: state and result names, messages, bus channels.

This module depends on the standard library and pydantic only, so the agent (which never
imports the server's code) and the server share one definition of every message.

Frames are JSON text frames of the agents' websocket (``/api/agent/ws``), each one object
with a ``type``:

- agent -> server (``AgentFrame``): ``hello`` (first frame), ``ping``, ``pong``, ``batch``
  {messages: [job message, ...]}, ``service_logs`` {records, dropped} (the agent's own log).
  A job message (``JobMessage``) carries the job's id and
  the job's next sequence number (set by the agent's outbox): ``step_started``, ``log``,
  ``step_done``, ``step_info``, ``test_results``, ``issues``, ``job_done``.
- server -> agent (``ServerFrame``): ``welcome`` (answer to hello), ``assign`` {job},
  ``cancel`` {job_id}, ``ack`` {job_id, seq}, ``ping``, ``pong``.

The server validates a frame once, where it enters (``kraken.api.agent_hub``), and its
handlers receive these models.  A job message that does not validate does not spoil the
rest of its batch: it becomes a ``MalformedJobMessage`` that says what was wrong, and the
server ends that job with ``error`` (see ``docs/architecture.md``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

# ---------------------------------------------------------------- states and results (the API's strings)


class FlowKind(StrEnum):
    CI = "ci"
    DEV = "dev"


class State(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


class Result(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


class StepState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


class StepResult(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


# ---------------------------------------------------------------- bus channels


SCHED_CHANNEL = "sched"  # wake the scheduler: {}
EVENTS_CHANNEL = "events"  # live changes for the UI and the API's event stream: {kind, ...}
PLANNER_CHANNEL = "planner"  # wake the planner (triggers): {}
AGENT_CHANNELS = "agent:*"  # the pattern the agent hubs subscribe to


def agent_channel(agent_id: int) -> str:
    """Server frames for one agent, delivered by the replica that holds its websocket."""
    return f"agent:{agent_id}"


def log_channel(job_id: int) -> str:
    """A job's new log lines: {first_line, step_index, lines}."""
    return f"log:{job_id}"


# ---------------------------------------------------------------- common parts

MAX_ID = 2**63 - 1  # ids and sequence numbers are 64-bit integers in the database
MAX_STEP = 2**31 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
StepIndex = Annotated[int, Field(ge=0, le=MAX_STEP)]
MAX_RERUNS = 10  # a step's ``rerun_failed``
MAX_ATTEMPT = MAX_RERUNS + 1


class Message(BaseModel):
    """Every frame and job message: unknown keys are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# ---------------------------------------------------------------- job messages (agent -> server, in batches)


class JobMessageBase(Message):
    type: str
    # Set by the agent's outbox when the message is put (a tool or the runner leaves them 0);
    # a message arriving without them is malformed.
    job_id: int = Field(default=0, ge=1, le=MAX_ID)
    seq: int = Field(default=0, ge=1, le=MAX_ID)


class JobAccepted(JobMessageBase):
    """The agent took the job (its first message for it). The agent runs nothing of the job
    before the server has acknowledged this one: an assignment the server took back meanwhile
    (re-queued because it was not accepted in time) is answered with ``cancel`` before the
    acknowledgement, so a job never runs on two agents."""

    type: Literal["job_accepted"] = "job_accepted"


class StepStarted(JobMessageBase):
    type: Literal["step_started"] = "step_started"
    step_index: StepIndex


class Log(JobMessageBase):
    type: Literal["log"] = "log"
    step_index: StepIndex | None = None  # None: the job's own lines (preparing its environment)
    lines: list[str]


class StepDone(JobMessageBase):
    type: Literal["step_done"] = "step_done"
    step_index: StepIndex
    result: StepResult
    message: str | None = None
    exit_code: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class StepInfo(JobMessageBase):
    """Facts about a step shown with it (commit checked out, artifacts uploaded, cache hits...)."""

    type: Literal["step_info"] = "step_info"
    step_index: StepIndex
    data: dict[str, Any]


class TestResults(JobMessageBase):
    """Up to a few thousand results ``[name, status, duration, message, values]`` (see ``kraken.results.ingest``)."""

    __test__ = False  # not a pytest test class

    type: Literal["test_results"] = "test_results"
    step_index: StepIndex | None = None
    tool: str = ""
    results: list[list[Any]]
    # 1: the step's first run of its tests; N > 1: the N-th run of the tests that failed in run N - 1
    # (a step's ``rerun_failed``): its failures were counted already, and with ``rerun_clears`` a
    # pass clears its test's failure from the job's count (failed, then passed: flaky)
    attempt: int = Field(default=1, ge=1, le=MAX_ATTEMPT)
    rerun_clears: bool = True


class Issues(JobMessageBase):
    """A linter's issues ``[path, line, column, symbol, message, type]``; at least one message per linter step."""

    type: Literal["issues"] = "issues"
    step_index: StepIndex | None = None
    tool: str = ""
    issues: list[list[Any]]


class JobDone(JobMessageBase):
    type: Literal["job_done"] = "job_done"
    result: Result
    reason: str | None = None


AnyJobMessage = JobAccepted | StepStarted | Log | StepDone | StepInfo | TestResults | Issues | JobDone
JobMessage = Annotated[AnyJobMessage, Discriminator("type")]
JOB_MESSAGE_TYPES: tuple[type[JobMessageBase], ...] = get_args(AnyJobMessage)
JOB_ENDING_TYPES = frozenset({"job_done"})  # messages that end a job


def message_type(model: type[JobMessageBase]) -> str:
    """The ``type`` of a job message class: ``message_type(StepDone) == "step_done"``."""
    return str(model.model_fields["type"].default)


_job_message = TypeAdapter[JobMessage](JobMessage, config=ConfigDict(defer_build=True))


class MalformedJobMessage(BaseModel):
    """A job message that did not validate: what could be read of it, and what was wrong.

    Never sent; the server builds it while validating a batch, so that the job it names can be
    acknowledged and ended with ``error`` instead of being retried for ever."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    type: str | None
    job_id: int | None  # None: no usable job id (the message is only logged)
    seq: int | None
    error: str


def describe(exc: ValidationError, limit: int = 500) -> str:
    """A validation error in one line: ``step_done.result: Input should be ...``."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _small_int(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
    return value if ok else None


def _job_message_or_malformed(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    raw = value if isinstance(value, dict) else {}
    kind = raw.get("type") if isinstance(raw.get("type"), str) else None
    job_id, seq = _small_int(raw.get("job_id")), _small_int(raw.get("seq"))
    try:
        msg: AnyJobMessage = _job_message.validate_python(value)
    except ValidationError as exc:
        return MalformedJobMessage(type=kind, job_id=job_id, seq=seq, error=describe(exc))
    if msg.job_id == 0 or msg.seq == 0:  # left unset (a value given is at least 1)
        missing = " and ".join(k for k, v in (("job_id", msg.job_id), ("seq", msg.seq)) if v == 0)
        return MalformedJobMessage(type=kind, job_id=job_id, seq=seq, error=f"{missing}: Field required")
    return msg


# One element of a batch: a valid job message, or what was wrong with it.
BatchItem = Annotated[AnyJobMessage | MalformedJobMessage, WrapValidator(_job_message_or_malformed)]


# ---------------------------------------------------------------- agent -> server frames


class Hello(Message):
    """The agent's first frame: who it is, what it can run, what it was doing."""

    type: Literal["hello"] = "hello"
    name: str = Field(min_length=1, max_length=200)
    groups: list[Annotated[str, Field(min_length=1, max_length=200)]] = []
    capabilities: dict[str, Any] = {}
    running_job: Id | None = None
    pending_jobs: list[Id] = []  # jobs whose last messages wait for an acknowledgement


class Ping(Message):
    type: Literal["ping"] = "ping"


class Pong(Message):
    type: Literal["pong"] = "pong"


class Batch(Message):
    """Job messages put close together, applied in one transaction per job on the server."""

    type: Literal["batch"] = "batch"
    messages: list[BatchItem]


MAX_SERVICE_RECORDS = 500  # records in one ``service_logs`` frame


class ServiceLogRecord(Message):
    """One log record of the agent process (``kraken.observability.servicelog``), masked already."""

    time: datetime
    level: Literal["debug", "info", "warning", "error", "critical"]
    logger: str = Field(max_length=200)
    message: str = Field(max_length=16_000)
    exception: str | None = Field(default=None, max_length=16_000)
    pid: int = Field(default=0, ge=0, le=2**31 - 1)
    flow_id: Id | None = None
    run_id: Id | None = None
    job_id: Id | None = None


class ServiceLogs(Message):
    """The agent's own log records (with ``KRAKEN_SERVICE_LOGS_STORE=true``), sent in batches
    by ``kraken.agent.logship``; the server stores them as the ``agent`` service's, named by the
    agent's name. ``dropped``: records the agent dropped since its last frame (its buffer was full)."""

    type: Literal["service_logs"] = "service_logs"
    records: list[ServiceLogRecord] = Field(max_length=MAX_SERVICE_RECORDS)
    dropped: int = Field(default=0, ge=0, le=MAX_ID)


AgentFrame = Annotated[Hello | Ping | Pong | Batch | ServiceLogs, Discriminator("type")]
agent_frame = TypeAdapter[AgentFrame](AgentFrame, config=ConfigDict(defer_build=True))


# ---------------------------------------------------------------- server -> agent frames


class When(StrEnum):
    """When a step runs, given the steps before it (the original Kraken's ``when`` values)."""

    PREV_OK = "prev_ok"  # the step before passed or was skipped
    ALWAYS = "always"
    NEVER = "never"
    WAS_ANY_ERROR = "was_any_error"  # an earlier step did not pass
    WAS_NO_ERROR = "was_no_error"  # no earlier step failed
    IS_CI = "is_ci"
    IS_DEV = "is_dev"


DEFAULT_WHEN = When.WAS_NO_ERROR  # as in the original


class StepSpec(Message):
    index: StepIndex
    tool: str
    name: str | None = None
    fields: dict[str, Any] = {}
    timeout: float | None = None
    when: When = DEFAULT_WHEN
    attempts: int = Field(default=1, ge=1)
    sleep_time_after_attempt: float = Field(default=0.0, ge=0)
    # a custom tool ("name@version", docs/tools.md): the sha256 of its package, which the agent checks
    tool_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


MAX_PARTS = 64  # a job's ``parallel``


class SplitSpec(Message):
    """This job is part ``part`` of ``parts`` of a job split by timing (``kraken.agent.tools.split``):
    ``durations`` are the branch's recent durations of the job's tests (by result name),
    ``tests_list`` the job's command that lists its tests for steps reading ``$KK_TESTS_FILE``."""

    part: int = Field(ge=1, le=MAX_PARTS)
    parts: int = Field(ge=1, le=MAX_PARTS)
    durations: dict[str, float] = {}
    tests_list: str | None = None


class JobSpec(Message):
    """What the agent needs to run a job (``kraken.control.orchestration.job_payload``)."""

    id: Id
    name: str
    executor: str = "direct"
    system: str = "any"
    timeout: float = Field(default=3600.0, gt=0)  # seconds
    limits: dict[str, Any] = {}
    config: dict[str, Any] | None = None
    flow_kind: FlowKind = FlowKind.CI
    last_seq: int = Field(default=0, ge=0, le=MAX_ID)  # messages the server applied (a re-sent assignment)
    steps: list[StepSpec]
    # the branch's environment variables: every command of every step gets them (under its own)
    env: dict[str, str] = {}
    secrets: dict[str, Any] = {}  # the values of the secrets the steps refer to (by name)
    transfer_token: str = ""  # for the job's artifact and cache transfers (bound to the job and this agent)
    split: SplitSpec | None = None


class Welcome(Message):
    type: Literal["welcome"] = "welcome"
    agent_id: Id
    heartbeat_interval: float = Field(gt=0)
    approved: bool = True  # False: enrolled, waiting for an administrator; no job comes until then
    credential: str | None = None  # right after enrolling: the agent's own credential from now on


class Assign(Message):
    type: Literal["assign"] = "assign"
    job: JobSpec


class Cancel(Message):
    type: Literal["cancel"] = "cancel"
    job_id: Id


class Ack(Message):
    """The job's messages up to ``seq`` are applied (or refused for good): the agent forgets them."""

    type: Literal["ack"] = "ack"
    job_id: Id
    seq: int = Field(ge=0, le=MAX_ID)


ServerFrame = Annotated[Welcome | Assign | Cancel | Ack | Ping | Pong, Discriminator("type")]
server_frame = TypeAdapter[ServerFrame](ServerFrame, config=ConfigDict(defer_build=True))
