"""Custom tools (``docs/tools.md``): a step whose tool is ``name@version`` of a registered tool.

At its first use on an agent, the tool's package is downloaded from the server
(``GET /api/agent/jobs/{job}/tools/{name}/{version}``, with the job's transfer token), its sha256
checked against the digest the job's assignment names, and unpacked (regular files only, no path
leaving the folder) into ``<agent data dir>/tools/<name>@<version>/``; later steps and jobs
use that copy while its digest still matches.

Running it is like a ``shell`` step: the tool's files are copied into the job's environment
(``.kraken/tools/<name>@<version>/``), the step's fields are written as JSON to
``.kraken/step-<N>-fields.json``, and the entry point runs in the job's working directory with
that file's path as its one argument (also in ``KRAKEN_TOOL_FIELDS``; ``KRAKEN_TOOL_DIR`` names
the tool's folder).  An entry point ending in ``.py`` runs with ``python3``, any other must be
executable.  Exit code 0: the step passed; another: failed.  Its output is the step's log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext, ToolError
from kraken.tools_registry.manifest import MANIFEST, Manifest, ManifestError, parse_manifest
from kraken.tools_registry.package import MAX_PACKAGE_SIZE, PackageError, unpack

DIGEST_FILE = ".kraken-digest"


def _cached(folder: Path, digest: str) -> bool:
    marker = folder / DIGEST_FILE
    return marker.is_file() and marker.read_text().strip() == digest


def _install(tools_dir: Path, key: str, data: bytes, digest: str) -> None:
    """Unpack into a fresh folder beside the cache entry, then put it in place."""
    tools_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=tools_dir))
    try:
        unpack(data, fresh)
        (fresh / DIGEST_FILE).write_text(digest)
        final = tools_dir / key
        if final.exists():
            shutil.rmtree(final)
        fresh.rename(final)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


async def _download(ctx: ToolContext, name: str, version: str) -> bytes:
    url, token = ctx.extra.get("server_url"), ctx.extra.get("agent_token")
    if not url or not token:
        raise ToolError("this agent was started without a server link; it cannot fetch custom tools")
    address = f"{str(url).rstrip('/')}/api/agent/jobs/{ctx.job_id}/tools/{name}/{version}"
    import httpx  # here, not at the top: the server imports this module (the tool's schema), never this (#13)

    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, read=300.0)) as client:
        resp = await client.get(address, headers={"Authorization": f"Bearer {token}"})
    if resp.status_code != 200:
        raise ToolError(f"cannot download the tool {name}@{version}: {resp.status_code} {resp.text[:300]}")
    if len(resp.content) > MAX_PACKAGE_SIZE:
        raise ToolError(f"the tool {name}@{version} has more than {MAX_PACKAGE_SIZE} bytes")
    return resp.content


async def fetch_tool(ctx: ToolContext, name: str, version: str) -> Path:
    """The tool's unpacked folder in the agent's cache, downloaded and checked when needed."""
    digest = ctx.extra.get("tool_digest")
    data_dir = ctx.extra.get("data_dir")
    if not digest:
        raise ToolError(f"the tool {name}@{version} is no longer registered on the server (the job names no digest)")
    if not data_dir:
        raise ToolError("this agent has no data dir to keep custom tools in")
    key = f"{name}@{version}"
    tools_dir = Path(data_dir) / "tools"
    folder = tools_dir / key
    if await asyncio.to_thread(_cached, folder, digest):
        await ctx.log(f"tool {key}: using the agent's cached copy (sha256 {digest[:12]})")
        return folder
    data = await _download(ctx, name, version)
    got = hashlib.sha256(data).hexdigest()
    if got != digest:
        raise ToolError(f"the tool {key} downloaded has sha256 {got}, not {digest} as the job says")
    try:
        await asyncio.to_thread(_install, tools_dir, key, data, digest)
    except PackageError as exc:
        raise ToolError(f"the tool {key} cannot be unpacked: {exc}") from None
    await ctx.log(f"tool {key}: downloaded ({len(data)} bytes, sha256 {digest[:12]})")
    return folder


def _read(folder: Path) -> tuple[Manifest, list[tuple[str, bytes, int]]]:
    try:
        manifest = parse_manifest((folder / MANIFEST).read_bytes())
    except (OSError, ManifestError) as exc:
        raise ToolError(f"the tool's manifest cannot be read: {exc}") from None
    files: list[tuple[str, bytes, int]] = []
    for dirpath, _, filenames in os.walk(folder):
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            rel = path.relative_to(folder).as_posix()
            if rel != DIGEST_FILE:
                files.append((rel, path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644))
    return manifest, files


def field_problem(manifest: Manifest, fields: dict[str, Any]) -> str | None:
    """What is wrong with the step's fields (after interpolation) per the tool's schema, or None."""
    import jsonschema  # loaded by the first job that runs a custom tool (#13)

    schema = manifest.fields_schema
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(fields))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


class CustomTool(Tool):
    """The base of the classes ``custom_tool_class`` makes, one per ``name@version``."""

    tool_name: ClassVar[str]
    version: ClassVar[str]
    fields_schema: ClassVar[dict[str, Any]] = {"type": "object"}  # the server checked the fields

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        folder = await fetch_tool(ctx, self.tool_name, self.version)
        manifest, files = await asyncio.to_thread(_read, folder)
        problem = field_problem(manifest, fields)
        if problem is not None:  # checked by the server too; the package's own schema decides here
            return StepOutcome("error", f"the fields do not fit the tool {self.name}: {problem}")
        base = f".kraken/tools/{self.tool_name}@{self.version}"
        for rel, data, mode in files:
            await ctx.executor.write_file(f"{base}/{rel}", data, mode)
        fields_file = f".kraken/step-{ctx.step_index}-fields.json"
        await ctx.executor.write_file(fields_file, json.dumps(fields).encode(), 0o644)
        workdir = ctx.executor.workdir
        entry = f"{workdir}/{base}/{manifest.entry}"
        fields_path = f"{workdir}/{fields_file}"
        argv = ["python3", entry, fields_path] if entry.endswith(".py") else [entry, fields_path]
        env = {"KRAKEN_TOOL_FIELDS": fields_path, "KRAKEN_TOOL_DIR": f"{workdir}/{base}"}
        res = await ctx.executor.exec(argv, env=env, timeout=ctx.timeout, on_line=ctx.log)
        if res.cancelled:
            return StepOutcome("cancelled", "cancelled", res.exit_code)
        if res.timed_out:
            return StepOutcome("timeout", f"step timed out after {ctx.timeout:g}s", res.exit_code)
        if res.exit_code == 0:
            return StepOutcome("passed", None, 0)
        return StepOutcome("failed", f"the tool {self.name} exited with code {res.exit_code}", res.exit_code)


def custom_tool_class(key: str) -> type[Tool]:
    """The tool class of ``name@version``."""
    name, _, version = key.partition("@")
    return type(f"CustomTool_{name}_{version}", (CustomTool,), {"name": key, "tool_name": name, "version": version})
