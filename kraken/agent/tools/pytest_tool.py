"""Tool ``pytest``: one pytest process for the whole selection, results from its JUnit XML report.

Test failures do not fail the step (the results carry them); a pytest that cannot run
(missing interpreter or plugin, usage error, no report) does, with the reason.

``"rerun_failed": N`` runs the failed tests again (pytest's ``--last-failed``, with a cache
directory of the step's own, so the failed node ids pass through a file, never a command line),
up to N times while some fail (``kraken.agent.tools.reruns``).

A part of a job split by timing (``"parallel": N``) still starts pytest once: a plugin of its own
(``-p kraken_share``, ``kraken.agent.tools.split``) keeps the part's share of what pytest collects
and writes it as node ids to a file, which a rerun of the failed tests keeps to.
"""

from __future__ import annotations

import asyncio
import json
import math
import shlex
import uuid
from typing import Any

from kraken.agent.tools import reruns
from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.agent.tools.split import PLUGIN_NAME, install_plugin, split_of, write_split
from kraken.results.collect import ResultSender, stream_junit

_SUMMARY_MAX = 4096  # the plugin's figures of a part's share (a few numbers in JSON)

_EXIT = {
    2: "pytest was interrupted",
    3: "pytest hit an internal error",
    4: "pytest usage error (bad arguments or plugin)",
}


def _words(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return shlex.split(value)


@register
class PytestTool(Tool):
    name = "pytest"
    description = "Run pytest once for the selection (params) and collect every test result."
    fields_schema = {
        "type": "object",
        "properties": {
            "params": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                "description": "arguments for pytest: test selection, -k, -m, ...",
            },
            "cwd": {"type": "string"},
            "pythonpath": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            },
            "pytest_exe": {"type": "string", "minLength": 1, "description": "default: python3 -m pytest"},
            "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            **reruns.RERUN_FIELDS,
        },
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        exe = _words(fields.get("pytest_exe")) or ["python3", "-m", "pytest"]
        params = _words(fields.get("params"))
        sender = ResultSender(ctx, self.name)
        times = reruns.prepare(sender, fields)
        extra: list[str] = []
        if times:
            if _cache_disabled(params):
                return StepOutcome("error", "rerun_failed: pytest's cache is disabled by params (-p no:cacheprovider)")
            # the failed tests of each run, as pytest's own cache records them (node ids, in a file)
            cache = f"{ctx.executor.workdir}/.kraken/pytest-cache-{ctx.step_index}-{uuid.uuid4().hex[:8]}"
            extra = ["-o", f"cache_dir={cache}"]
        deadline = None if ctx.timeout is None else asyncio.get_running_loop().time() + ctx.timeout
        run = _Run(ctx, exe, params, fields, sender, deadline)
        split = split_of(ctx)
        if split is not None:
            await run.take_share(split)
            extra += ["-p", PLUGIN_NAME]
        outcome = await run.once(extra)
        if split is not None and outcome.result != "cancelled":
            problem = await run.report_share(split)
            if problem is not None and outcome.result == "passed":  # else pytest's own error says more
                return problem
        if outcome.result != "passed" or not times:
            return outcome

        async def again(_failed: list[str]) -> StepOutcome:
            return await run.once([*extra, "--last-failed", "--last-failed-no-failures", "none"])

        return await reruns.rerun_failed(ctx, sender, times, again) or outcome


def _cache_disabled(params: list[str]) -> bool:
    return any(p in ("no:cacheprovider", "-pno:cacheprovider") for p in params)


class _Run:
    """One pytest process over the selection (``extra``: more arguments), its report sent as results."""

    def __init__(
        self,
        ctx: ToolContext,
        exe: list[str],
        params: list[str],
        fields: dict[str, Any],
        sender: ResultSender,
        deadline: float | None,
    ) -> None:
        self.ctx, self.exe, self.params, self.fields, self.sender, self.deadline = (
            ctx,
            exe,
            params,
            fields,
            sender,
            deadline,
        )
        self.plugins: str | None = None  # a directory put first on PYTHONPATH
        self.tests_file: str | None = None  # this part's node ids (KK_TESTS_FILE), written by the plugin
        self.split_file: str | None = None  # the part's place and durations (KK_SPLIT_FILE)
        self.summary_file: str | None = None  # the plugin's figures of the share (KK_SPLIT_SUMMARY)

    def env(self) -> dict[str, str]:
        env = {k: str(v) for k, v in (self.fields.get("env") or {}).items()}
        pythonpath = self.fields.get("pythonpath")
        paths = (_words(pythonpath) if isinstance(pythonpath, list) else [pythonpath]) if pythonpath else []
        if self.plugins:
            paths = [self.plugins, *paths]
        if paths:
            env["PYTHONPATH"] = ":".join(paths)
        if self.tests_file and self.split_file and self.summary_file:
            env.update(KK_TESTS_FILE=self.tests_file, KK_SPLIT_FILE=self.split_file, KK_SPLIT_SUMMARY=self.summary_file)
        return env

    def timeout(self) -> float | None:
        if self.deadline is None:
            return self.ctx.timeout
        return max(1.0, self.deadline - asyncio.get_running_loop().time())

    async def take_share(self, split: dict[str, Any]) -> None:
        """Have the one pytest process keep this part's share of what it collects: the plugin
        ``kraken_share`` (``kraken.agent.tools.split``), its input and output files."""
        ctx = self.ctx
        self.plugins = await install_plugin(ctx)
        self.split_file = await write_split(ctx, split)
        self.summary_file = f"{self.split_file}.out"
        self.tests_file = f"{ctx.executor.workdir}/.kraken/tests-{ctx.step_index}-{uuid.uuid4().hex[:8]}.txt"

    async def report_share(self, split: dict[str, Any]) -> StepOutcome | None:
        """After the first run: log and record the share the plugin picked; an outcome when it
        picked none (the plugin did not run, so every collected test did)."""
        ctx = self.ctx
        assert self.summary_file is not None
        part, parts = int(split["part"]), int(split["parts"])
        try:  # written in the job's environment: read as untrusted (bounded, checked)
            text = b""
            async for chunk in ctx.executor.read_file(self.summary_file):
                text += chunk
                if len(text) > _SUMMARY_MAX:
                    raise ValueError(f"more than {_SUMMARY_MAX} bytes")
            data = json.loads(text)
            figures = {
                "part": part,
                "parts": parts,
                "tests": int(data["tests"]),
                "of": int(data["of"]),
                "expected_seconds": float(data["expected_seconds"]),
            }
            timed = int(data["timed"])
            if not math.isfinite(figures["expected_seconds"]):
                raise ValueError("expected_seconds is not a number")
        except Exception as exc:  # pytest stopped before collecting (see its output), or a plugin disabled
            return StepOutcome("error", f"parallel: pytest did not pick this part's share ({exc!r})")
        await ctx.log(
            f"part {part} of {parts}: {figures['tests']} of {figures['of']} tests ({timed} with a history, "
            f"{figures['expected_seconds']:.1f}s expected)"
        )
        await ctx.info({"split": figures})
        return None

    async def once(self, extra: list[str]) -> StepOutcome:
        ctx, exe, sender, fields = self.ctx, self.exe, self.sender, self.fields
        report = f"{ctx.executor.workdir}/.kraken/pytest-{ctx.step_index}-{uuid.uuid4().hex[:8]}.xml"
        argv = [*exe, *self.params, *extra, f"--junitxml={report}"]
        await ctx.log("$ " + shlex.join(argv))
        before = sender.total
        res = await ctx.executor.exec(
            argv, cwd=fields.get("cwd"), env=self.env(), timeout=self.timeout(), on_line=ctx.log
        )
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.exit_code == 127 or (res.exit_code == 1 and not await _exists(ctx, report) and not res.timed_out):
            return StepOutcome("error", f"cannot run {shlex.join(exe)}: not found or not runnable here", res.exit_code)
        err = await stream_junit(ctx, report, sender, shown="pytest report")
        await sender.flush()
        await ctx.log(f"collected {sender.summary()}")
        if res.timed_out:
            return StepOutcome("timeout", f"pytest timed out after {ctx.timeout:g}s", res.exit_code)
        if err is not None and sender.total == before:
            if res.exit_code in _EXIT:
                why = _EXIT[res.exit_code]
                return StepOutcome("error", f"{why} (exit code {res.exit_code}): see the step log", res.exit_code)
            if err.message.startswith("cannot read"):
                return StepOutcome(
                    "error", f"pytest wrote no report (exit code {res.exit_code}): see the step log", res.exit_code
                )
            return StepOutcome("error", str(err), res.exit_code)
        if res.exit_code in _EXIT:
            return StepOutcome("error", f"{_EXIT[res.exit_code]} (exit code {res.exit_code})", res.exit_code)
        if err is not None:
            return StepOutcome("error", str(err), res.exit_code)
        if res.exit_code == 5:
            return StepOutcome("passed", "no tests were collected", res.exit_code)
        if res.exit_code not in (0, 1):
            return StepOutcome("error", f"pytest exited with code {res.exit_code}", res.exit_code)
        return StepOutcome("passed", None, res.exit_code)


async def _exists(ctx: ToolContext, path: str) -> bool:
    res = await ctx.executor.exec(["/bin/sh", "-c", f"test -f {shlex.quote(path)}"], timeout=30)
    return res.exit_code == 0
