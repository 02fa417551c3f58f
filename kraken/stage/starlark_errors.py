"""Turn the sandbox worker's failure replies and starlark's error text into ``StageSchemaError``."""

from __future__ import annotations

import re
from typing import Any

from kraken.stage.errors import OWN_FILE, USER_FILE, StageSchemaError

_SPAN = re.compile(r"^\s*--> (?P<file>.+):(?P<line>\d+):(?P<col>\d+)\s*$", re.MULTILINE)
_SNIPPET_LINE = re.compile(r"^\s*\d+ \|", re.MULTILINE)
_EXPECTED = re.compile(r",? expected one of (?P<items>.*)$")
_VARIABLE = re.compile(r"^Variable `(?P<name>[^`]+)` not found(?:, did you mean `(?P<hint>[^`]+)`\?)?$")
_KEY = re.compile(r"^Key `(?P<key>.*)` was not found$")
_USER_FRAME = re.compile(r"^\s*\* " + re.escape(USER_FILE) + r":(?P<line>\d+), in ", re.MULTILINE)
_SERIALIZE = re.compile(r"`serde::serialize` not supported on type `(?P<type>[^`]+)`")


def _message_and_span(text: str) -> tuple[str, re.Match[str] | None, str]:
    """Starlark's last ``error: ...`` message, its ``--> file:line:col`` span and what follows it."""
    start = text.rfind("\nerror: ")
    start = start + 1 if start >= 0 else (0 if text.startswith("error: ") else -1)
    body = text[start + len("error: ") :] if start >= 0 else text
    span = _SPAN.search(body)
    message = (body[: span.start()] if span else body).strip()
    rest = body[span.end() :] if span else ""
    return message, span, rest


def _plain_syntax(message: str) -> str:
    message = message.removeprefix("Parse error: ")
    if "reserved keyword `import`" in message:
        return "syntax error: 'import' is not available; stage code cannot import modules"
    expected = _EXPECTED.search(message)
    if expected:
        items = expected.group("items")
        if items.count(",") >= 4:  # a long list of tokens helps nobody
            message = message[: expected.start()]
        else:
            message = message[: expected.start()] + ", expected " + items.replace('"', "'")
    return "syntax error: " + message.replace(" here", "").replace("`", "'")


def _plain_runtime(message: str) -> str:
    variable = _VARIABLE.match(message)
    if variable:
        text = f"name '{variable.group('name')}' is not defined"
        if variable.group("hint"):
            text += f" (did you mean '{variable.group('hint')}'?)"
        return text
    key = _KEY.match(message)
    if key:
        return f"key {key.group('key')} not found"
    if "`load` is not allowed" in message or "No imports are available" in message:
        return "load() is not available; stage code cannot load other files"
    if "call stack overflow" in message:
        return "recursion too deep (call stack overflow)"
    if message.startswith("Parse error: "):
        return _plain_syntax(message)
    return message.replace("`", "'")


def from_starlark_text(text: str, code: str) -> StageSchemaError:
    """An error located in the user's code (line/column from starlark's span)."""
    serialize = _SERIALIZE.search(text)
    if serialize:
        return StageSchemaError(
            "stage(ctx) must return plain data (dicts, lists, strings, numbers, booleans, None), "
            f"found a value of type '{serialize.group('type')}'"
        )
    message, span, rest = _message_and_span(text)
    plain = _plain_runtime(message)
    if span is None:
        return StageSchemaError(plain)

    if span.group("file") != USER_FILE:
        frames = _USER_FRAME.findall(text)
        if frames:  # in a helper of Kraken's (``_kraken_pow``, ...): at the user's line that called it
            return StageSchemaError(plain, line=int(frames[-1]))
        prefix = "calling stage(ctx): " if span.group("file") == OWN_FILE else ""
        return StageSchemaError(prefix + plain)
    line, column = int(span.group("line")), int(span.group("col"))
    if not _SNIPPET_LINE.search(rest):  # starlark shows no source when the error is at the end of the code
        return StageSchemaError(plain + " (at the end of the code)", line=_last_line(code))
    return StageSchemaError(plain, line=line, column=column)


def _last_line(code: str) -> int:
    lines = code.splitlines()
    for index in range(len(lines), 0, -1):
        if lines[index - 1].strip():
            return index
    return 1


def _type_name(name: str) -> str:
    return {"NoneType": "None", "str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(name, name)


def from_reply(reply: dict[str, Any], code: str, timeout: float, memory_mb: int) -> StageSchemaError:
    """The error for a failure reply ``{"ok": false, "kind": ..., "detail": ...}`` of the worker."""
    kind, detail = str(reply.get("kind")), str(reply.get("detail", ""))
    if kind in ("syntax", "error"):
        return from_starlark_text(detail, code)
    if kind == "no_stage":
        return StageSchemaError("the code must define a function 'stage(ctx)'")
    if kind == "not_function":
        return StageSchemaError(f"'stage' must be a function 'def stage(ctx):', not a {detail}")
    if kind == "not_dict":
        return StageSchemaError(f"stage(ctx) must return a dict, got {_type_name(detail)}")
    if kind == "not_data":
        return StageSchemaError(f"stage(ctx) must return plain data: {detail}")
    if kind == "too_large":
        return StageSchemaError(f"stage(ctx) returned too much data ({detail} bytes of JSON)")
    return sandbox_failure(kind, detail, timeout, memory_mb)


def sandbox_failure(reason: str, detail: str, timeout: float, memory_mb: int) -> StageSchemaError:
    if reason == "timeout":
        return StageSchemaError(f"stage evaluation took longer than {timeout:g} s")
    if reason == "memory":
        return StageSchemaError(f"stage evaluation exceeded the memory limit ({memory_mb} MB)")
    if reason == "crash":
        return StageSchemaError(
            f"stage evaluation crashed{' (' + detail + ')' if detail else ''}; "
            "very deeply nested code or data can cause this"
        )
    return StageSchemaError(f"stage evaluation failed ({reason}{': ' + detail if detail else ''})")
