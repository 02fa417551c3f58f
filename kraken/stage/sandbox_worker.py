"""The sandbox worker: a separate process that evaluates stage code with starlark.

Run as a script (``python -I sandbox_worker.py REQ_FD RESP_FD MEMORY_BYTES``) by
``kraken.stage.sandbox``; it imports nothing from ``kraken`` so that it starts in
~20 ms and its address space holds little besides starlark. It caps its own
address space (RLIMIT_AS), then serves requests one at a time until the request
pipe closes.

Request (JSON): ``{"code": str, "ctx": {...}, "timeout": float, "cooperative": bool}``.
Reply (JSON): ``{"ok": true, "value": <what stage(ctx) returned>}`` or
``{"ok": false, "kind": KIND, "detail": str}`` with KIND one of ``syntax``, ``error``
(starlark's error text in ``detail``), ``no_stage``, ``not_function``, ``not_dict``,
``not_data``, ``too_large``, ``timeout``, ``memory``, ``internal``.
After a ``memory`` reply the worker exits: a heap that ran out of memory is not reused.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import starlark as sl

USER_FILE = "stage.star"
OWN_FILE = "<kraken>"
MAX_REQUEST = 16 * 1024 * 1024
MAX_REPLY = 8 * 1024 * 1024

# ``ctx``: a struct; its ``project``, ``branch``, ``stage``, ``flow`` and ``run`` are structs too
# (``ctx.flow.seq.own``), their ``data`` and ``trigger`` and ``ctx.args``/``ctx.env`` stay dicts.
_PRELUDE = """
_kraken_struct = struct
_kraken_objects = ("project", "branch", "stage", "flow", "run")
_kraken_dicts = ("data", "trigger")

def _kraken_make_ctx(fields):
    out = dict(fields)
    for key in _kraken_objects:
        if type(out.get(key)) == "dict":
            inner = dict(out[key])
            for name in list(inner.keys()):
                if type(inner[name]) == "dict" and name not in _kraken_dicts:
                    inner[name] = _kraken_struct(**inner[name])
            out[key] = _kraken_struct(**inner)
    return _kraken_struct(**out)

# what kraken.stage.pyast converts Python's ``**``, sets and ``list.sort`` to
def _kraken_pow(base, exp):
    if type(exp) != "int":
        fail("a ** b: only whole-number exponents are available in stage code, not %r" % (exp,))
    n = exp if exp >= 0 else -exp
    result = 1.0 if type(base) == "float" else 1
    for _ in range(64):
        if n == 0:
            break
        if n % 2 == 1:
            result = result * base
        n = n // 2
        if n:
            base = base * base
    if n:
        fail("a ** b: the exponent %d is too large" % exp)
    return result if exp >= 0 else 1.0 / result

def _kraken_set(items = ()):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out

def _kraken_sort(items, key = None, reverse = False):
    ordered = sorted(items, key = key, reverse = reverse) if key != None else sorted(items, reverse = reverse)
    items.clear()
    items.extend(ordered)
"""
_CHECK = "type(stage)\n"
_CALL = "stage(_kraken_make_ctx(_kraken_ctx))\n"


class _Failure(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _dialect() -> Any:
    dialect = sl.Dialect.extended()
    dialect.enable_load = False
    dialect.enable_top_level_stmt = True
    dialect.enable_f_strings = True
    return dialect


def _globals() -> Any:
    ext = sl.LibraryExtension
    return sl.Globals.extended_by([ext.StructType, ext.Json, ext.Map, ext.Filter, ext.Partial, ext.Print])


DIALECT = _dialect()
GLOBALS = _globals()
AST_PRELUDE = sl.parse(OWN_FILE, _PRELUDE, DIALECT)
AST_CHECK = sl.parse(OWN_FILE, _CHECK, DIALECT)
AST_CALL = sl.parse(OWN_FILE, _CALL, DIALECT)


def _plain(value: Any, where: str) -> Any:
    """Check that ``value`` is plain data (tuples become lists); raise ``not_data`` if not."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Failure("not_data", f"{where}: key {key!r} is not a string")
            out[key] = _plain(item, f"{where}.{key}" if where else key)
        return out
    raise _Failure("not_data", f"{where}: value of type {type(value).__name__} is not plain data")


def _run(ast: Any, module: Any, options: Any) -> Any:
    return sl.eval_with(options, module, ast, GLOBALS).value


def evaluate(code: str, ctx: dict[str, Any], timeout: float, cooperative: bool) -> Any:
    """Evaluate ``code``, call ``stage(ctx)`` and return its (plain) result."""
    deadline = time.monotonic() + timeout
    cancelled: Callable[[], bool] | None = (lambda: time.monotonic() > deadline) if cooperative else None
    options = sl.EvalOptions(check_cancelled=cancelled)
    try:
        sl.parse(USER_FILE, code, DIALECT)  # syntax errors located in the user's own text
    except sl.StarlarkError as exc:
        raise _Failure("syntax", str(exc)) from None
    # A trailing statement keeps the module's own value (e.g. a bare function) from being converted.
    ast = sl.parse(USER_FILE, code + "\nNone\n", DIALECT)
    module = sl.Module()
    try:
        _run(AST_PRELUDE, module, options)
        _run(ast, module, options)
        try:
            kind = _run(AST_CHECK, module, options)
        except sl.StarlarkError as exc:
            if "Variable `stage` not found" in str(exc):
                raise _Failure("no_stage") from None
            raise
        if kind != "function":
            raise _Failure("not_function", str(kind))
        module["_kraken_ctx"] = ctx
        value = _run(AST_CALL, module, options)
    except sl.StarlarkError as exc:
        if time.monotonic() > deadline:
            raise _Failure("timeout") from None
        raise _Failure("error", str(exc)) from None
    if not isinstance(value, dict):
        raise _Failure("not_dict", type(value).__name__)
    return _plain(value, "")


def _answer(request: bytes) -> tuple[dict[str, Any], bool]:
    """The reply to one request and whether the worker may serve another one."""
    try:
        req = json.loads(request)
        value = evaluate(req["code"], req["ctx"], float(req["timeout"]), bool(req.get("cooperative", True)))
        return {"ok": True, "value": value}, True
    except _Failure as exc:
        return {"ok": False, "kind": exc.kind, "detail": exc.detail}, True
    except MemoryError:
        return {"ok": False, "kind": "memory", "detail": ""}, False
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        if "out of memory" in str(exc) or "memory allocation" in str(exc):
            return {"ok": False, "kind": "memory", "detail": str(exc)}, False
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return {"ok": False, "kind": "internal", "detail": f"{type(exc).__name__}: {exc}"}, False


def _limit_resources(memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def serve(requests: Connection, replies: Connection, memory: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    _limit_resources(memory)
    while True:
        try:
            request = requests.recv_bytes(MAX_REQUEST)
        except (EOFError, OSError):
            return
        reply, healthy = _answer(request)
        try:
            data = json.dumps(reply).encode()
        except MemoryError:
            data, healthy = b'{"ok": false, "kind": "memory", "detail": ""}', False
        if len(data) > MAX_REPLY:
            data = json.dumps({"ok": False, "kind": "too_large", "detail": str(len(data))}).encode()
        replies.send_bytes(data)
        if not healthy:
            return


def main(argv: list[str]) -> None:
    req_fd, reply_fd, memory = (int(arg) for arg in argv[1:4])
    serve(Connection(req_fd, writable=False), Connection(reply_fd, readable=False), memory)


if __name__ == "__main__":
    main(sys.argv)
