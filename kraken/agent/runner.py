"""Runs one job on the agent: prepares the executor, runs each step's tool, reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from kraken.agent.executors import executor_class
from kraken.agent.executors.base import Executor, ExecutorError, JobEnvironment
from kraken.agent.limits import job_limits
from kraken.agent.outbox import Outbox
from kraken.agent.tools.base import StepOutcome, ToolContext, ToolError
from kraken.protocol import DEFAULT_WHEN, AnyJobMessage, JobDone, Log, Result, StepDone, StepResult, StepStarted

log = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 0.05
LOG_FLUSH_LINES = 1000


class StepLog:
    """Collects a step's output lines and sends them in batches."""

    def __init__(self, outbox: Outbox, job_id: int, step_index: int | None) -> None:
        self.outbox = outbox
        self.job_id = job_id
        self.step_index = step_index
        self.lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    async def line(self, text: str) -> None:
        self.lines.append(text)
        if len(self.lines) >= LOG_FLUSH_LINES:
            await self.flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(LOG_FLUSH_SECONDS, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        self._flushing = asyncio.ensure_future(self.flush())

    async def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        await self.outbox.put(self.job_id, Log(step_index=self.step_index, lines=lines))


class JobRunner:
    def __init__(
        self,
        job: dict[str, Any],
        outbox: Outbox,
        agent_name: str,
        data_dir: str,
        server: dict[str, str] | None = None,
        default_limits: dict[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.default_limits = default_limits or {}  # the agent's --limit values
        self.server = server or {}  # {"url": http base of the server, "token": agent token} for bulk transfers
        self.job_id = int(job["id"])
        self.outbox = outbox
        self.agent_name = agent_name
        self.data_dir = data_dir
        self.executor: Executor | None = None
        self.cancelled = False
        self.cancel_reason = "cancelled"  # the job's and its step's reason once cancelled
        self._cancelled = asyncio.Event()  # wakes a pause between attempts
        self.task: asyncio.Task[None] | None = None

    async def send(self, message: AnyJobMessage) -> None:
        await self.outbox.put(self.job_id, message)

    @property
    def cancelled_event(self) -> asyncio.Event:
        return self._cancelled

    async def cancel(self, reason: str = "cancelled") -> None:
        """Stop the job: it ends ``cancelled`` with ``reason`` (the first one given)."""
        if not self.cancelled:
            self.cancel_reason = reason
        self.cancelled = True
        self._cancelled.set()
        if self.executor is not None:
            await self.executor.cancel()

    async def run(self) -> None:
        job = self.job
        deadline = time.monotonic() + float(job.get("timeout") or 3600)
        env = JobEnvironment(
            job_id=self.job_id,
            agent_name=self.agent_name,
            system=job.get("system") or "any",
            data_dir=self.data_dir,
            limits=job_limits(self.default_limits, job.get("limits")),
            variables={str(k): str(v) for k, v in (job.get("env") or {}).items()},
        )
        result, reason = "passed", None
        setup_log = StepLog(self.outbox, self.job_id, None)
        try:
            self.executor = executor_class(job.get("executor") or "direct")(env)
            await self.executor.start()
        except (ExecutorError, KeyError) as exc:
            msg = str(exc) if isinstance(exc, ExecutorError) else f"unknown executor {exc}"
            await setup_log.line(f"cannot prepare the job's environment: {msg}")
            await setup_log.flush()
            await self.send(JobDone(result=Result.ERROR, reason=msg))
            return
        try:
            result, reason = await self._steps(deadline)
        finally:
            with contextlib.suppress(Exception):
                await self.executor.stop()
        await self.send(JobDone(result=Result(result), reason=reason))

    def _when(self, condition: str, prev_ok: bool, any_error: bool) -> bool | None:
        """Whether a step with this ``when`` runs (None: a condition this agent does not know)."""
        return {
            "always": True,
            "never": False,
            "prev_ok": prev_ok,  # the step before passed or was skipped
            "was_no_error": not any_error,  # no earlier step failed (the default)
            "was_any_error": any_error,
            "is_ci": self.job.get("flow_kind", "ci") == "ci",
            "is_dev": self.job.get("flow_kind") == "dev",
        }.get(condition)

    async def _steps(self, deadline: float) -> tuple[str, str | None]:
        """Run the steps in order, each where its ``when`` allows; the job's result is the first
        step result that was not ``passed`` (a step that was not run counts as passed)."""
        assert self.executor is not None
        failed: str | None = None
        reason: str | None = None
        prev_ok = True
        for step in self.job["steps"]:
            index = int(step["index"])
            if self.cancelled:
                return "cancelled", self.cancel_reason
            condition = step.get("when") or DEFAULT_WHEN
            run_it = self._when(condition, prev_ok, failed is not None)
            if run_it is False:
                prev_ok = True
                continue  # left queued: the server marks it skipped when the job ends
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", f"job timed out after {self.job.get('timeout'):g} s"
            await self.send(StepStarted(step_index=index))
            if run_it is None:
                outcome = StepOutcome("error", f"unknown 'when' condition {condition!r}")
            else:
                outcome = await self._attempts(step, index, deadline)
            await self.send(
                StepDone(
                    step_index=index,
                    result=StepResult(outcome.result),
                    message=outcome.message,
                    exit_code=outcome.exit_code,
                )
            )
            prev_ok = outcome.result == "passed"
            if outcome.result != "passed" and not failed:
                failed = outcome.result
                reason = f"step {index} ({step['tool']}): {outcome.message or outcome.result}"
        if self.cancelled:
            return "cancelled", self.cancel_reason
        return (failed or "passed"), reason

    async def _attempts(self, step: dict[str, Any], index: int, deadline: float) -> StepOutcome:
        """Run a step up to ``attempts`` times until it passes, sleeping ``sleep_time_after_attempt``
        between attempts; each attempt's output is marked in the log when there are several."""
        attempts = max(1, int(step.get("attempts") or 1))
        pause = float(step.get("sleep_time_after_attempt") or 0)
        outcome = StepOutcome("error", "not run")
        for attempt in range(1, attempts + 1):
            if self.cancelled:
                return StepOutcome("cancelled", self.cancel_reason)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return StepOutcome("timeout", f"job timed out after {self.job.get('timeout'):g} s")
            timeout = min(float(step["timeout"]), remaining) if step.get("timeout") else remaining
            job_timeout = step.get("timeout") is None or remaining < float(step["timeout"])
            prefix = f"attempt {attempt}/{attempts}" if attempts > 1 else None
            outcome = await self._step(step, index, timeout, prefix)
            if outcome.result == "timeout" and job_timeout:
                return StepOutcome("timeout", f"job timed out after {self.job.get('timeout'):g} s")
            if outcome.result in ("passed", "cancelled") or self.cancelled:
                break
            if attempt < attempts:
                wait = min(pause, max(0.0, deadline - time.monotonic()))
                await self._note(
                    index,
                    f"--- attempt {attempt}/{attempts} {outcome.result}: "
                    f"{outcome.message or ''}; next attempt in {wait:g} s ---",
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cancelled.wait(), wait)
        if attempts > 1 and outcome.result != "passed":
            outcome = StepOutcome(
                outcome.result, f"{outcome.message or outcome.result} (after {attempt} attempts)", outcome.exit_code
            )
        return outcome

    async def _note(self, index: int, text: str) -> None:
        slog = StepLog(self.outbox, self.job_id, index)
        await slog.line(text)
        await slog.flush()

    async def _step(self, step: dict[str, Any], index: int, timeout: float, attempt: str | None = None) -> StepOutcome:
        assert self.executor is not None
        slog = StepLog(self.outbox, self.job_id, index)
        if attempt is not None:
            await slog.line(f"--- {attempt} ---")
        try:
            from kraken.agent.tools.registry import get_tool  # here: an idle agent needs no tool (jsonschema, httpx)

            try:
                tool = get_tool(step["tool"])()
            except KeyError:
                await slog.line(f"this agent has no tool '{step['tool']}'")
                return StepOutcome("error", f"unknown tool '{step['tool']}'")
            ctx = ToolContext(
                executor=self.executor,
                job_id=self.job_id,
                step_index=index,
                log=slog.line,
                send=self.send,  # the tools' messages name their step themselves
                timeout=timeout,
                extra={
                    "flow_kind": self.job.get("flow_kind"),
                    "split": self.job.get("split"),  # this part of a job split by timing (tools/split.py)
                    "config": self.job.get("config"),
                    "secrets": self.job.get("secrets") or {},  # those the job's steps refer to
                    "server_url": self.server.get("url"),
                    "agent_token": self.server.get("token"),
                    "agent_name": self.agent_name,
                    "data_dir": self.data_dir,  # custom tools are cached there
                    "tool_digest": step.get("tool_digest"),  # a custom tool's package
                },
            )
            try:
                outcome = await tool.run(ctx, dict(step.get("fields") or {}))
            except ToolError as exc:
                await slog.line(f"{step['tool']}: {exc}")
                outcome = StepOutcome("error", str(exc))
            except ExecutorError as exc:
                await slog.line(f"environment error: {exc}")
                outcome = StepOutcome("error", str(exc))
            except Exception as exc:
                log.exception("tool %s crashed", step["tool"])
                await slog.line(f"internal error in tool {step['tool']}: {exc!r}")
                outcome = StepOutcome("error", f"internal error: {exc!r}")
            if self.cancelled:
                outcome = StepOutcome("cancelled", self.cancel_reason, outcome.exit_code)
            return outcome
        finally:
            await slog.flush()
