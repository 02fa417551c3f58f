"""What the ``artifacts`` and ``cache`` tools share: the server's bulk-transfer endpoints
(plain streamed HTTP with the agent token), file listing and safe paths in the job's
environment, and streaming a download into the environment.

Every file goes through the executor (``read_file`` streams out; ``write_stream`` when the
executor has it, else the direct executor's host path, else parts appended with ``cat``), so
the tools work on the host and in containers and never hold a whole file in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import posixpath
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from kraken.agent.executors.base import ExecResult, Executor
from kraken.agent.tools.base import ToolContext, ToolError
from kraken.artifacts.paths import UnsafePath, clean_relative, inside

PART_SIZE = 32 << 20  # fallback writes: bytes per part appended with cat


class Server:
    """The job's bulk-transfer endpoints on the server."""

    def __init__(self, ctx: ToolContext) -> None:
        url, token = ctx.extra.get("server_url"), ctx.extra.get("agent_token")
        if not url or not token:
            raise ToolError("this agent was started without a server link; it cannot transfer files")
        self.base = f"{str(url).rstrip('/')}/api/agent/jobs/{ctx.job_id}"
        self.headers = {"Authorization": f"Bearer {token}", "X-Kraken-Agent": str(ctx.extra.get("agent_name") or "")}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base, headers=self.headers, timeout=httpx.Timeout(60.0, read=600.0, write=600.0)
        )


def error_text(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except Exception:
        detail = None
    return f"{resp.status_code} {detail or resp.text[:300]}"


async def capture(
    ctx: ToolContext, argv: list[str], cwd: str | None = None, timeout: float | None = None
) -> tuple[ExecResult, list[str]]:
    lines: list[str] = []

    async def keep(line: str) -> None:
        lines.append(line)

    res = await ctx.executor.exec(argv, cwd=cwd, timeout=timeout or ctx.timeout, on_line=keep)
    return res, lines


async def real_path(ctx: ToolContext, path: str) -> str | None:
    """The physical path (symlinks resolved) of a directory in the environment, or None."""
    res, lines = await capture(ctx, ["sh", "-c", 'cd -P -- "$1" 2>/dev/null && pwd -P', "sh", path], timeout=60)
    return lines[-1].strip() if res.ok and lines else None


async def safe_dir(ctx: ToolContext, path: str, what: str, create: bool = False) -> str:
    """``path`` (relative to the working directory, or absolute inside it) as a relative path,
    after checking that it really stays inside (symlinks included)."""
    workdir = ctx.executor.workdir
    if path.startswith("/"):
        if not inside(path, workdir):
            raise ToolError(f"the {what} {path!r} is outside the job's working directory {workdir}")
        path = posixpath.relpath(posixpath.normpath(path), workdir)
    try:
        rel = clean_relative(path or ".", what)
    except UnsafePath as exc:
        raise ToolError(str(exc)) from None
    if create and rel != ".":
        await capture(ctx, ["mkdir", "-p", "--", rel], timeout=60)
    root = await real_path(ctx, ".")
    real = await real_path(ctx, rel)
    if real is None:
        raise ToolError(f"the {what} {path!r} does not exist")
    if root is None or not inside(real, root):
        raise ToolError(f"the {what} {path!r} leads outside the job's working directory (through a symlink)")
    return rel


async def list_files(ctx: ToolContext, base: str) -> list[tuple[str, int]]:
    """Regular files under ``base`` (relative to the working directory) with their sizes;
    symlinks are not followed (a link to a file elsewhere is not a file of the job)."""
    script = (
        'find . -type f -exec sh -c \'for f; do printf "%s\\t%s\\n" "$(wc -c < "$f" | tr -d " ")" "$f"; done\' sh {} +'
    )
    res, lines = await capture(ctx, ["sh", "-c", script], cwd=base)
    if not res.ok:
        raise ToolError(f"cannot list the files in {base!r}: " + " ".join(lines[-3:]))
    out = []
    for line in lines:
        size, _, name = line.partition("\t")
        if name.startswith("./") and size.isdigit():
            out.append((name[2:], int(size)))
    return sorted(out)


async def file_chunks(executor: Executor, path: str, digest: Any) -> AsyncIterator[bytes]:
    agen = executor.read_file(path)
    try:
        async for chunk in agen:
            digest.update(chunk)
            yield chunk
    finally:
        with contextlib.suppress(Exception):
            await agen.aclose()  # type: ignore[attr-defined]


async def write_stream(ctx: ToolContext, rel: str, chunks: AsyncIterator[bytes], mode: int = 0o644) -> None:
    """Write a stream into the environment at ``rel`` (relative to the working directory)."""
    executor = ctx.executor
    method = getattr(executor, "write_stream", None)
    if method is not None:
        await method(rel, chunks, mode)
        return
    if executor.name == "direct":
        await _write_host(Path(executor.workdir), rel, chunks, mode)
        return
    await _write_parts(ctx, rel, chunks, mode)


async def _write_host(workdir: Path, rel: str, chunks: AsyncIterator[bytes], mode: int) -> None:
    target = workdir / rel
    await asyncio.to_thread(_prepare_host_target, workdir, target, rel)
    fh = await asyncio.to_thread(target.open, "wb")
    try:
        buf = bytearray()
        async for chunk in chunks:
            buf += chunk
            if len(buf) >= 1 << 20:
                await asyncio.to_thread(fh.write, bytes(buf))
                buf.clear()
        if buf:
            await asyncio.to_thread(fh.write, bytes(buf))
    finally:
        fh.close()
    target.chmod(mode)


def _prepare_host_target(workdir: Path, target: Path, rel: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not inside(os.path.realpath(target.parent), os.path.realpath(workdir)):
        raise ToolError(f"{rel!r} leads outside the job's working directory (through a symlink)")
    if target.is_symlink():
        target.unlink()


async def _write_parts(ctx: ToolContext, rel: str, chunks: AsyncIterator[bytes], mode: int) -> None:
    """For executors without streaming writes: parts of PART_SIZE bytes appended in place."""
    part = f".kraken/part-{ctx.step_index}"
    res, lines = await capture(ctx, ["sh", "-c", 'mkdir -p -- "$(dirname -- "$1")" && : > "$1"', "sh", rel])
    if not res.ok:
        raise ToolError(f"cannot create {rel!r}: {' '.join(lines[-3:])}")
    buf = bytearray()

    async def flush() -> None:
        await ctx.executor.write_file(part, bytes(buf), 0o600)
        res, lines = await capture(ctx, ["sh", "-c", 'cat -- "$1" >> "$2" && rm -f -- "$1"', "sh", part, rel])
        if not res.ok:
            raise ToolError(f"cannot write {rel!r}: {' '.join(lines[-3:])}")
        buf.clear()

    async for chunk in chunks:
        buf += chunk
        if len(buf) >= PART_SIZE:
            await flush()
    if buf:
        await flush()
    await capture(ctx, ["chmod", oct(mode)[2:], "--", rel])


async def download_to(
    ctx: ToolContext, client: httpx.AsyncClient, url: str, rel: str, expected_sha256: str | None = None
) -> int:
    """Stream ``url`` into the environment at ``rel``; check the checksum; return the size."""
    digest = hashlib.sha256()
    size = 0
    async with client.stream("GET", url) as resp:
        if resp.status_code != 200:
            await resp.aread()
            raise ToolError(f"download of {rel!r} failed: {error_text(resp)}")

        async def body() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in resp.aiter_bytes(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        await write_stream(ctx, rel, body())
    if expected_sha256 and digest.hexdigest() != expected_sha256:
        raise ToolError(f"{rel!r}: checksum mismatch (got {digest.hexdigest()}, expected {expected_sha256})")
    return size


def quoted(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


async def storage_limits(client: httpx.AsyncClient) -> dict[str, int]:
    resp = await client.get("/storage")
    if resp.status_code != 200:
        raise ToolError(f"the server refused the transfer: {error_text(resp)}")
    limits: dict[str, int] = resp.json()
    return limits
