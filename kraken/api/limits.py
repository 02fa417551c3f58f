"""Request body limits and JSON well-formedness, checked before any route reads a body.

- A body larger than its cap gets a 413 at once: from its ``Content-Length`` before a byte is
  read, else as soon as the bytes received pass the cap. Caps: webhooks 25 MB, custom tool
  archives 16 MB, everything else 1 MB. Streamed uploads (artifacts, cache entries) are left to
  their routes, which apply the artifact and cache size settings while they stream.
- A JSON body must be standard JSON of sane depth: lone surrogates (``"\\ud800"``), ``NaN``,
  numbers beyond a double and nesting deeper than 1024 get a 422 that says where; Python's json
  module would accept the first ones (and fail later, storing or answering) and crash on the last.
- No NUL character in the path, the query or a JSON string: PostgreSQL cannot store it in text
  (a 500 when it tried); a 422 names where it was.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_LIMIT = 1 << 20
WEBHOOK_LIMIT = 25 << 20
TOOL_ARCHIVE_LIMIT = 16 << 20  # kraken.tools_registry.package.MAX_PACKAGE_SIZE
# Routes that stream their body under their own limit (KRAKEN_ARTIFACTS_MAX_SIZE, KRAKEN_CACHE_MAX_SIZE).
STREAMED = re.compile(r"^/api/agent/jobs/[^/]+/(artifacts|cache)$")


def body_limit(method: str, path: str) -> int | None:
    """The cap of a request's body in bytes; None: the route limits it itself."""
    if method == "PUT" and STREAMED.match(path):
        return None
    if path.startswith("/api/webhooks/"):
        return WEBHOOK_LIMIT
    if path == "/api/tools/archive":
        return TOOL_ARCHIVE_LIMIT
    return JSON_LIMIT


def _is_json(scope: Scope) -> bool:
    """Whether the body is read as JSON: a JSON media type, or none at all (FastAPI reads those too)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return bool(media == b"application/json" or media.endswith(b"+json"))
    return True


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _nul_at(value: Any, loc: list[str | int]) -> list[str | int] | None:
    """Where a NUL character is in a decoded JSON value (a key or a string), or None."""
    if isinstance(value, str):
        return loc if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                return [*loc, k]
            found = _nul_at(v, [*loc, k])
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul_at(v, [*loc, i])
            if found is not None:
                return found
    return None


def _nul_error(loc: list[str | int]) -> dict[str, Any]:
    return {"detail": [{"type": "string_nul", "loc": loc, "msg": "NUL characters (\\u0000) are not accepted"}]}


def _too_large(limit: int, size: int | None) -> dict[str, Any]:
    got = f"{size} bytes" if size is not None else "more"
    return {"detail": f"request body too large: {got}, the limit here is {limit} bytes"}


class BodyLimits:
    """Pure ASGI middleware: reads a capped body fully (up to its cap), checks it, then hands it on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            await _answer(send, 422, _nul_error(["path"]))
            return
        if b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
            await _answer(send, 422, _nul_error(["query"]))
            return
        limit = body_limit(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > limit:
            await _answer(send, 413, _too_large(limit, length))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, _too_large(limit, None))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(scope):
            try:
                value = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                error = {"type": "json_invalid", "loc": ["body", exc.pos], "msg": f"invalid JSON: {exc.msg}"}
                await _answer(send, 422, {"detail": [error]})
                return
            where = _nul_at(value, ["body"]) if b"\\u0000" in body else None
            if where is not None:
                await _answer(send, 422, _nul_error(where))
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
