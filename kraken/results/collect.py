"""Agent-side helpers shared by the result tools: batching results to the server, reading
report files through the executor and expanding globs inside the job's environment."""

from __future__ import annotations

import posixpath
import shlex
from collections import Counter
from collections.abc import Iterable
from typing import Any

from kraken.agent.tools.base import ToolContext
from kraken.protocol import TestResults
from kraken.results.parsers.base import ParsedResult, ReportError
from kraken.results.parsers.junit import JUnitParser

BATCH_SIZE = 5000
BATCH_BYTES = 1 << 20  # a batch of long failure messages is sent before it reaches 5000 results
READ_LIMIT = 256 * 1024 * 1024  # for formats read whole (JSON); XML is streamed


class ResultSender:
    """Sends results as ``{"type": "test_results", "step_index", "tool", "results": [...]}``
    messages of at most ``batch_size`` compact items ``[name, status, duration, message, values]``
    (and about BATCH_BYTES of names and messages).

    ``ctx.send`` delivers reliably and exactly once, so a batch is never lost nor doubled."""

    def __init__(self, ctx: ToolContext, tool: str, batch_size: int = BATCH_SIZE) -> None:
        self.ctx = ctx
        self.tool = tool
        self.batch_size = batch_size
        self.counts: Counter[str] = Counter()
        self.batches = 0
        self._batch: list[list[Any]] = []
        self._bytes = 0
        # reruns of failed tests (``kraken.agent.tools.reruns``): which run of the tests this is, and
        # the names that failed in it (kept only when asked: a rerun needs them)
        self.attempt = 1
        self.rerun_clears = True
        self.keep_failed = False
        self.failed_names: list[str] = []

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    async def add(self, result: ParsedResult) -> None:
        self.counts[result.status] += 1
        if self.keep_failed and result.status in ("failed", "error"):
            self.failed_names.append(result.name)
        self._batch.append(result.wire())
        self._bytes += 48 + len(result.name) + (len(result.message) if result.message else 0)
        if len(self._batch) >= self.batch_size or self._bytes >= BATCH_BYTES:
            await self.flush()

    async def add_all(self, results: Iterable[ParsedResult]) -> None:
        for r in results:
            await self.add(r)

    async def flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self._bytes = 0
        await self.ctx.send(
            TestResults(
                step_index=self.ctx.step_index,
                tool=self.tool,
                results=batch,
                attempt=self.attempt,
                rerun_clears=self.rerun_clears,
            )
        )
        self.batches += 1

    async def next_attempt(self) -> None:
        """Send what the current run of the tests gave, then count the next run's failures afresh."""
        await self.flush()
        self.attempt += 1
        self.failed_names = []

    def summary(self) -> str:
        parts = [f"{n} {status}" for status, n in sorted(self.counts.items())]
        return f"{self.total} results" + (f" ({', '.join(parts)})" if parts else "")


def join_path(cwd: str | None, path: str) -> str:
    if path.startswith("/") or not cwd:
        return path
    return posixpath.normpath(posixpath.join(cwd, path))


async def read_all(ctx: ToolContext, path: str, limit: int = READ_LIMIT) -> bytes:
    data = bytearray()
    async for chunk in ctx.executor.read_file(path):
        data += chunk
        if len(data) > limit:
            raise ValueError(f"{path} is larger than {limit} bytes")
    return bytes(data)


async def stream_junit(
    ctx: ToolContext, path: str, sender: ResultSender, shown: str | None = None
) -> ReportError | None:
    """Parse one JUnit file chunk by chunk as it streams out of the environment."""
    parser = JUnitParser(shown or path)
    try:
        async for chunk in ctx.executor.read_file(path):
            await sender.add_all(parser.feed(chunk))
            if parser.error is not None:
                break
    except Exception as exc:  # the executor could not read it (missing file, container gone)
        return ReportError(shown or path, None, f"cannot read: {exc}")
    await sender.add_all(parser.close())
    return parser.error


_FORBIDDEN_GLOB_CHARS = set(";&|$`()<>\\\"'\n\r")


def check_glob(pattern: str) -> str | None:
    bad = sorted(set(pattern) & _FORBIDDEN_GLOB_CHARS)
    if bad:
        return f"file_glob {pattern!r} contains characters that are not allowed: {' '.join(bad)}"
    return None


# The step fields of the tools that collect result files.
FILE_GLOB_FIELDS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "file_glob": {"type": "string", "minLength": 1},
        "cwd": {"type": "string"},
    },
    "required": ["file_glob"],
    "additionalProperties": False,
}


async def matching_files(ctx: ToolContext, fields: dict[str, Any]) -> tuple[list[str], str | None]:
    """The files ``file_glob`` (in ``cwd``) names, or an error message when it is bad or matches none."""
    pattern: str = fields["file_glob"]
    cwd: str | None = fields.get("cwd")
    bad = check_glob(pattern)
    if bad:
        return [], bad
    files = await expand_glob(ctx, pattern, cwd)
    if not files:
        return [], f"no file matches {pattern!r}" + (f" in {cwd}" if cwd else "")
    return files, None


def first_error(errors: list[str]) -> str:
    return errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


async def expand_glob(ctx: ToolContext, pattern: str, cwd: str | None) -> list[str]:
    """File paths (relative to cwd, or absolute) matching ``pattern`` inside the environment,
    found with the POSIX shell only.  ``**`` matches across directories (via ``find``)."""
    found: list[str] = []

    async def keep(line: str) -> None:
        if line:
            found.append(line)

    scripts = []
    for word in pattern.split():
        if "**" in word:
            start, _, _ = word.partition("**")
            root = start.rstrip("/") or "."
            # "**/" may also match no directory at all
            variants = {word.replace("**/", "*/").replace("**", "*"), word.replace("**/", "").replace("**", "*")}
            preds = " -o ".join(
                f"-path {shlex.quote(v if v.startswith(('/', './')) else './' + v)}" for v in sorted(variants)
            )
            scripts.append(
                f"find {shlex.quote(root if root.startswith(('/', '.')) else './' + root)} "
                f"-type f \\( {preds} \\) 2>/dev/null | sed 's|^\\./||' | sort"
            )
        else:
            scripts.append(f'for f in {word}; do [ -f "$f" ] && echo "$f"; done')
    res = await ctx.executor.exec(["/bin/sh", "-c", "; ".join(scripts)], cwd=cwd, timeout=120, on_line=keep)
    if res.exit_code not in (0, 1) and not found:
        return []
    seen: set[str] = set()
    out = []
    for f in found:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out
