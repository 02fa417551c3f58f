"""Tool ``artifacts``: upload files of the job to Kraken's artifact store, or download the
artifacts earlier stages of the same flow uploaded.

- ``action: upload``: ``source`` (a path or glob, or a list; ``**`` spans directories, a
  directory means the files below it), relative to ``cwd``; stored as ``destination/<path
  relative to cwd>``; ``public: true`` marks artifacts meant for people (listed as such).
  ``report_entry`` names one of the uploaded files (relative to ``cwd``, as the sources are) as
  the entry page of an HTML report: the server serves it with the files of its directory under
  the run's reports (sandboxed, ``kraken.api.routes.reports``), and the UI links to it.
- ``action: download``: ``source`` globs over the flow's artifact paths (default: all), written
  to ``cwd/destination/<artifact path>``.

Paths must stay inside the job's working directory: absolute paths elsewhere, '..' and
symlinks leading out are refused.  Files over the server's size limit are refused before any
byte is sent.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Any

from kraken.agent.tools.base import StepOutcome, Tool, ToolContext, ToolError
from kraken.agent.tools.registry import register
from kraken.agent.tools.transfer import (
    Server,
    download_to,
    error_text,
    file_chunks,
    list_files,
    safe_dir,
    storage_limits,
)
from kraken.artifacts.paths import UnsafePath, clean_relative, glob_regex, inside, static_prefix

_STRINGS = {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string"}}]}


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def join(*parts: str) -> str:
    kept = [p for p in parts if p and p != "."]
    return posixpath.normpath(posixpath.join(*kept)) if kept else "."


@register
class ArtifactsTool(Tool):
    name = "artifacts"
    description = "Upload files as artifacts of the flow, or download the flow's artifacts."
    fields_schema = {
        "type": "object",
        "properties": {
            "action": {"enum": ["upload", "download"]},
            "source": _STRINGS,
            "cwd": {"type": "string"},
            "destination": {"type": "string"},
            "public": {"type": "boolean"},
            "report_entry": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
        "not": {"required": ["report_entry", "action"], "properties": {"action": {"const": "download"}}},
        "x-not-hint": "'report_entry' names an uploaded file: it goes with action 'upload', not 'download'",
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        action = fields.get("action", "upload")
        if action == "upload":
            if not as_list(fields.get("source")):
                raise ToolError("'source' is required to upload (a path, a glob or a list of them)")
            return await self.upload(ctx, fields)
        return await self.download(ctx, fields)

    async def _patterns(self, ctx: ToolContext, cwd: str, sources: list[str]) -> list[str]:
        base = join(ctx.executor.workdir, cwd)
        out = []
        for src in sources:
            if src.startswith("/"):
                if not inside(src, base):
                    raise ToolError(
                        f"the source {src!r} is outside the working directory {base}: give a path inside it"
                    )
                src = posixpath.relpath(posixpath.normpath(src), base)
            try:
                out.append(clean_relative(src, "source"))
            except UnsafePath as exc:
                raise ToolError(str(exc)) from None
        return out

    async def upload(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        cwd = await safe_dir(ctx, fields.get("cwd") or ".", "cwd")
        try:
            destination = clean_relative(fields.get("destination") or ".", "destination")
        except UnsafePath as exc:
            raise ToolError(str(exc)) from None
        files: dict[str, int] = {}
        for pattern in await self._patterns(ctx, cwd, as_list(fields.get("source"))):
            prefix = static_prefix(pattern)
            regex = glob_regex(pattern)
            try:
                base = await safe_dir(ctx, join(cwd, prefix), "source directory")
            except ToolError as exc:
                if "does not exist" in str(exc):
                    raise ToolError(f"no file matches {pattern!r} in {cwd!r}") from None
                raise
            matched = 0
            for name, size in await list_files(ctx, base):
                rel = join(prefix, name)
                if regex.match(rel):
                    files[rel] = size
                    matched += 1
            if not matched:
                raise ToolError(f"no file matches {pattern!r} in {cwd!r}")
        entry = self._report_entry(fields, cwd, files)
        server = Server(ctx)
        public = bool(fields.get("public", False))
        uploaded: list[dict[str, Any]] = []
        async with server.client() as client:
            limit = (await storage_limits(client))["artifacts_max_size"]
            too_big = [(rel, size) for rel, size in files.items() if size > limit]
            if too_big:
                rel, size = too_big[0]
                raise ToolError(
                    f"{rel!r} has {size} bytes, more than the artifact size limit of {limit} bytes"
                    + (f" (and {len(too_big) - 1} more files)" if len(too_big) > 1 else "")
                )
            for rel, size in sorted(files.items()):
                stored = join(destination, rel)
                digest = hashlib.sha256()
                resp = await client.put(
                    "/artifacts",
                    params={"path": stored, "public": str(public).lower(), "report_entry": str(rel == entry).lower()},
                    content=file_chunks(ctx.executor, join(cwd, rel), digest),
                    headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                )
                if resp.status_code != 201:
                    raise ToolError(f"upload of {rel!r} failed: {error_text(resp)}")
                art = resp.json()
                if art["sha256"] != digest.hexdigest() or art["size"] != size:
                    raise ToolError(f"upload of {rel!r} was damaged on the way (checksum or size differ)")
                await ctx.log(f"uploaded {stored} ({size} bytes, sha256 {art['sha256']})")
                uploaded.append({"path": stored, "size": size, "sha256": art["sha256"]})
        await ctx.info({"artifacts": uploaded[:100], "artifacts_count": len(uploaded)})
        return StepOutcome("passed", None, 0)

    @staticmethod
    def _report_entry(fields: dict[str, Any], cwd: str, files: dict[str, int]) -> str | None:
        """The uploaded file (relative to ``cwd``) that ``report_entry`` names, or None."""
        value = fields.get("report_entry")
        if value is None:
            return None
        try:
            entry = clean_relative(value, "report_entry")
        except UnsafePath as exc:
            raise ToolError(str(exc)) from None
        if entry not in files:
            raise ToolError(f"report_entry {value!r} is not among the files uploaded from {cwd!r}: name one of them")
        return entry

    async def download(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        cwd = await safe_dir(ctx, fields.get("cwd") or ".", "cwd")
        try:
            destination = clean_relative(fields.get("destination") or ".", "destination")
            patterns = [clean_relative(p, "source") for p in as_list(fields.get("source")) or ["**"]]
        except UnsafePath as exc:
            raise ToolError(str(exc)) from None
        target = await safe_dir(ctx, join(cwd, destination), "destination", create=True)
        regexes = [glob_regex(p) for p in patterns]
        server = Server(ctx)
        got: list[dict[str, Any]] = []
        async with server.client() as client:
            resp = await client.get("/artifacts")
            if resp.status_code != 200:
                raise ToolError(f"cannot list the flow's artifacts: {error_text(resp)}")
            wanted = [a for a in resp.json() if any(r.match(a["path"]) for r in regexes)]
            if not wanted:
                return StepOutcome("failed", f"no artifact of this flow matches {', '.join(patterns)}")
            for art in wanted:
                try:
                    rel = join(target, clean_relative(art["path"], "artifact path"))
                except UnsafePath as exc:
                    raise ToolError(str(exc)) from None
                size = await download_to(ctx, client, f"/artifacts/{art['id']}", rel, art["sha256"])
                await ctx.log(f"downloaded {art['path']} to {rel} ({size} bytes, sha256 {art['sha256']})")
                got.append({"path": art["path"], "size": size, "sha256": art["sha256"]})
        await ctx.info({"downloaded": got[:100], "downloaded_count": len(got)})
        return StepOutcome("passed", None, 0)
