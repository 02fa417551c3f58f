"""Tool ``cache``: save directories of the job under a key, or restore them in a later job of
the same branch.

- ``action: save``: ``key``, ``paths`` (relative to ``cwd``); an existing key is kept as it is;
- ``action: restore``: ``key``, else the newest entry whose key starts with one of ``keys``
  (tried in order), extracted into ``cwd``.

A miss is a normal outcome (the step passes, its info says ``"cache": "miss"``); so is a save
that cannot be kept (too large, nothing to save): the build does not depend on its cache.
Entries live per branch, expire when unused and the branch's total is capped (oldest use goes).
Needs ``tar`` and ``gzip`` in the job's environment.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kraken.agent.tools.artifacts import as_list, join
from kraken.agent.tools.base import StepOutcome, Tool, ToolContext, ToolError
from kraken.agent.tools.registry import register
from kraken.agent.tools.transfer import Server, capture, download_to, error_text, file_chunks, safe_dir, storage_limits
from kraken.artifacts.paths import UnsafePath, clean_relative


@register
class CacheTool(Tool):
    name = "cache"
    description = "Save files under a key, or restore them (exact key, else newest key with a given prefix)."
    fields_schema = {
        "type": "object",
        "properties": {
            "action": {"enum": ["save", "restore"]},
            "key": {"type": "string", "minLength": 1, "maxLength": 500},
            "keys": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "paths": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string"}}]},
            "cwd": {"type": "string"},
        },
        "required": ["action"],
        "additionalProperties": False,
    }

    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        if fields["action"] == "save":
            return await self.save(ctx, fields)
        return await self.restore(ctx, fields)

    async def save(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        key = fields.get("key")
        if not key:
            raise ToolError("'key' is required to save a cache entry")
        try:
            paths = [clean_relative(p, "path") for p in as_list(fields.get("paths"))]
        except UnsafePath as exc:
            raise ToolError(str(exc)) from None
        if not paths:
            raise ToolError("'paths' is required to save a cache entry")
        cwd = await safe_dir(ctx, fields.get("cwd") or ".", "cwd")
        for p in paths:  # each path's directory must really be inside the working directory
            parent = join(cwd, p.rsplit("/", 1)[0]) if "/" in p else cwd
            try:
                await safe_dir(ctx, parent, "path")
            except ToolError as exc:
                if "does not exist" not in str(exc):
                    raise
        async with Server(ctx).client() as client:
            found = await client.get("/cache", params={"key": key})
            if found.status_code != 200:
                raise ToolError(f"cache lookup failed: {error_text(found)}")
            if found.json().get("hit"):
                await ctx.log(f"cache: the branch has an entry for key {key!r}; not saved again")
                await ctx.info({"cache": "exists", "key": key})
                return StepOutcome("passed", None, 0)
            archive = f".kraken/cache-{ctx.step_index}.tar.gz"
            await capture(ctx, ["mkdir", "-p", ".kraken"])
            res, lines = await capture(ctx, ["tar", "-czf", f"{ctx.executor.workdir}/{archive}", "--", *paths], cwd=cwd)
            try:
                if not res.ok:
                    await ctx.log("cache: nothing saved, tar failed: " + " | ".join(lines[-5:]))
                    await ctx.info({"cache": "not saved", "key": key})
                    return StepOutcome("passed", "cache not saved: tar failed", 0)
                res, out = await capture(ctx, ["sh", "-c", 'wc -c < "$1"', "sh", archive])
                size = int(out[-1].strip()) if res.ok and out and out[-1].strip().isdigit() else -1
                limit = (await storage_limits(client))["cache_max_size"]
                if size < 0 or size > limit:
                    await ctx.log(f"cache: not saved, the archive has {size} bytes (limit {limit})")
                    await ctx.info({"cache": "too large", "key": key, "size": size})
                    return StepOutcome("passed", "cache not saved: too large", 0)
                digest = hashlib.sha256()
                resp = await client.put(
                    "/cache",
                    params={"key": key},
                    content=file_chunks(ctx.executor, archive, digest),
                    headers={"Content-Length": str(size), "Content-Type": "application/gzip"},
                )
            finally:
                await capture(ctx, ["rm", "-f", "--", archive])
        if resp.status_code not in (200, 201):
            raise ToolError(f"cache save failed: {error_text(resp)}")
        body = resp.json()
        if not body.get("saved"):
            await ctx.log(f"cache: not saved: {body.get('reason')}")
            await ctx.info({"cache": "exists", "key": key})
        else:
            await ctx.log(f"cache: saved {', '.join(paths)} under key {key!r} ({size} bytes)")
            await ctx.info({"cache": "saved", "key": key, "size": size})
        return StepOutcome("passed", None, 0)

    async def restore(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        key = fields.get("key") or ""
        prefixes = [str(k) for k in fields.get("keys") or []]
        if not key and not prefixes:
            raise ToolError("'key' or 'keys' is required to restore a cache entry")
        cwd = await safe_dir(ctx, fields.get("cwd") or ".", "cwd", create=True)
        async with Server(ctx).client() as client:
            found = await client.get("/cache", params={"key": key, "keys": prefixes})
            if found.status_code != 200:
                raise ToolError(f"cache lookup failed: {error_text(found)}")
            entry = found.json()
            if not entry.get("hit"):
                also = f" nor prefixes {prefixes}" if prefixes else ""
                await ctx.log(f"cache miss: no entry for key {key!r}{also}")
                await ctx.info({"cache": "miss", "key": key})
                return StepOutcome("passed", None, 0)
            archive = f".kraken/cache-{ctx.step_index}.tar.gz"
            try:
                await download_to(ctx, client, f"/cache/{entry['id']}", archive, entry["sha256"])
                res, lines = await capture(ctx, ["tar", "-xzf", f"{ctx.executor.workdir}/{archive}"], cwd=cwd)
            finally:
                await capture(ctx, ["rm", "-f", "--", archive])
        if not res.ok:
            raise ToolError("cache: extracting the archive failed: " + " | ".join(lines[-5:]))
        how = "hit" if entry.get("exact") else "partial hit"
        await ctx.log(f"cache {how}: restored key {entry['key']!r} ({entry['size']} bytes)")
        await ctx.info({"cache": "hit" if entry.get("exact") else "partial", "key": entry["key"]})
        return StepOutcome("passed", None, 0)
