"""Tool ``pytest``: one pytest process for the whole selection, results from its JUnit XML report.

Test failures do not fail the step (the results carry them); a pytest that cannot run
(missing interpreter or plugin, usage error, no report) does, with the reason.

``"rerun_failed": N`` runs the failed tests again (pytest's ``--last-failed``, with a cache
directory of the step's own, so the failed node ids pass through a file, never a command line),
up to N times while some fail (``kraken.agent.tools.reruns``).

A part of a job split by timing (``"parallel": N``) collects the selection (``--collect-only``),
keeps its share (``kraken.agent.tools.split``) as node ids in a file and runs only those
(a plugin of its own, ``-p kraken_share``, reads the file).
"""

from __future__ import annotations

import asyncio
import shlex
import uuid
from collections import deque
from typing import Any

from kraken.agent.tools import reruns
from kraken.agent.tools.base import StepOutcome, Tool, ToolContext
from kraken.agent.tools.registry import register
from kraken.agent.tools.split import PLUGIN_NAME, install_plugin, pytest_result_name, share, split_of, write_list
from kraken.results.collect import ResultSender, stream_junit

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
            problem = await run.take_share(split)
            if problem is not None:
                return problem
            extra += ["-p", PLUGIN_NAME]
        outcome = await run.once(extra)
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
        self.tests_file: str | None = None  # this part's node ids (KK_TESTS_FILE)

    def env(self) -> dict[str, str]:
        env = {k: str(v) for k, v in (self.fields.get("env") or {}).items()}
        pythonpath = self.fields.get("pythonpath")
        paths = (_words(pythonpath) if isinstance(pythonpath, list) else [pythonpath]) if pythonpath else []
        if self.plugins:
            paths = [self.plugins, *paths]
        if paths:
            env["PYTHONPATH"] = ":".join(paths)
        if self.tests_file:
            env["KK_TESTS_FILE"] = self.tests_file
        return env

    def timeout(self) -> float | None:
        if self.deadline is None:
            return self.ctx.timeout
        return max(1.0, self.deadline - asyncio.get_running_loop().time())

    async def take_share(self, split: dict[str, Any]) -> StepOutcome | None:
        """Collect the selection's node ids, keep this part's share (``kraken.agent.tools.split``) in
        a file, and have pytest run only those (plugin ``kraken_share``); an outcome when it cannot."""
        ctx = self.ctx
        self.plugins = await install_plugin(ctx)
        listing = f"{ctx.executor.workdir}/.kraken/collected-{ctx.step_index}-{uuid.uuid4().hex[:8]}.txt"
        argv = [*self.exe, *self.params, "--collect-only", "-p", PLUGIN_NAME]
        await ctx.log("$ " + shlex.join(argv))
        tail: deque[str] = deque(maxlen=100)

        async def keep(line: str) -> None:
            tail.append(line)

        res = await ctx.executor.exec(
            argv,
            cwd=self.fields.get("cwd"),
            env={**self.env(), "KK_COLLECT_FILE": listing},
            timeout=self.timeout(),
            on_line=keep,
        )
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        for line in tail if res.exit_code not in (0, 5) else list(tail)[-1:]:  # the listing itself is long
            await ctx.log(line)
        if res.exit_code not in (0, 5):
            return StepOutcome(
                "error", f"parallel: pytest --collect-only failed (exit code {res.exit_code})", res.exit_code
            )
        ids: list[str] = []
        if res.exit_code == 0:
            try:
                text = b"".join([chunk async for chunk in ctx.executor.read_file(listing)]).decode()
            except Exception as exc:  # the plugin did not run (an old pytest, a plugin disabled)
                return StepOutcome("error", f"parallel: pytest listed no tests ({exc})", res.exit_code)
            ids = [line for line in text.splitlines() if line]
        part, parts = int(split["part"]), int(split["parts"])
        known = {str(k): float(v) for k, v in (split.get("durations") or {}).items()}
        durations = {n: known[r] for n in ids if (r := pytest_result_name(n)) in known}
        mine = share(ids, durations, part, parts)
        self.tests_file = await write_list(ctx, mine, "tests")
        expected = sum(durations.get(n, 0.0) for n in mine)
        timed = sum(1 for n in mine if n in durations)
        await ctx.log(
            f"part {part} of {parts}: {len(mine)} of {len(ids)} tests ({timed} with a history, "
            f"{expected:.1f}s expected)"
        )
        await ctx.info(
            {
                "split": {
                    "part": part,
                    "parts": parts,
                    "tests": len(mine),
                    "of": len(ids),
                    "expected_seconds": round(expected, 3),
                }
            }
        )
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
