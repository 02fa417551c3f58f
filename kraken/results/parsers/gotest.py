"""Parser for ``go test -json`` output (test2json events, one JSON object per line)."""

from __future__ import annotations

from typing import Any

import orjson

from kraken.results.parsers.base import BoundedText, ParsedResult, bound_name

_ACTIONS = {"pass": "passed", "fail": "failed", "skip": "skipped"}


class GoTestParser:
    """``feed_line(line)`` returns finished results; ``close()`` reports tests that never finished
    (a panic or a timeout killed the test binary) as errors."""

    def __init__(self) -> None:
        self._running: dict[tuple[str, str], BoundedText] = {}
        self._pkg_output: dict[str, BoundedText] = {}
        self._pkg_failed_tests: set[str] = set()
        self.events = 0
        self.other_lines = 0  # lines that are not test2json events (build output, ...)

    def feed_line(self, line: str) -> tuple[list[ParsedResult], str | None]:
        """Returns (results, a line worth logging or None)."""
        line = line.strip()
        if not line:
            return [], None
        if not line.startswith("{"):
            self.other_lines += 1
            return [], line
        try:
            ev: dict[str, Any] = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.other_lines += 1
            return [], line
        self.events += 1
        action = ev.get("Action")
        pkg = str(ev.get("Package") or "")
        test = ev.get("Test")
        if test:
            key = (pkg, str(test))
            if action == "run":
                self._running[key] = BoundedText()
            elif action == "output":
                buf = self._running.get(key)
                if buf is None:
                    buf = self._running[key] = BoundedText()
                buf.add(str(ev.get("Output") or ""))
            elif action in _ACTIONS:
                buf = self._running.pop(key, None)
                status = _ACTIONS[action]
                message = buf.text() if buf is not None and status != "passed" else None
                if status == "failed":
                    self._pkg_failed_tests.add(pkg)
                elapsed = ev.get("Elapsed")
                duration = float(elapsed) if isinstance(elapsed, int | float) else None
                return [ParsedResult(bound_name(f"{pkg}::{test}"), status, duration, message, None)], None
            return [], None
        # package-level events
        if action == "output":
            out = str(ev.get("Output") or "")
            self._pkg_output.setdefault(pkg, BoundedText()).add(out)
            return [], out.rstrip("\n")
        if action == "fail":
            text = self._pkg_output.pop(pkg, None)
            if pkg not in self._pkg_failed_tests:
                # the package failed without a failing test: build error, TestMain exit, panic...
                message = text.text() if text is not None else "package failed"
                return [ParsedResult(bound_name(f"{pkg}::[package]"), "error", None, message, None)], None
        elif action in ("pass", "skip"):
            self._pkg_output.pop(pkg, None)
        return [], None

    def close(self) -> list[ParsedResult]:
        out = [
            ParsedResult(bound_name(f"{pkg}::{test}"), "error", None, buf.text() or "test did not finish", None)
            for (pkg, test), buf in self._running.items()
        ]
        self._running.clear()
        return out
