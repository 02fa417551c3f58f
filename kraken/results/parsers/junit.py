"""Streaming JUnit/xUnit XML parser (pytest, Maven Surefire, go-junit-report, ctest, ...).

Built on expat fed in chunks: memory stays constant whatever the file size (each
test case is emitted when its element closes and nothing else is kept).  DTDs are
refused outright, so entity expansion attacks ("billion laughs", external entities)
cannot happen: a JUnit report never needs a DTD.
"""

from __future__ import annotations

from typing import Any
from xml.parsers import expat

from kraken.results.parsers.base import BoundedText, ParsedResult, ReportError, bound_message, bound_name


class ForbiddenXML(Exception):
    pass


_FAILURE_TAGS = {"failure": "failed", "error": "error"}
# Surefire's reruns: each is one more (failed) execution of the same test on the same commit.
_RERUN_TAGS = {
    "flakyFailure": "failed",
    "flakyError": "error",
    "rerunFailure": "failed",
    "rerunError": "error",
}
_STATUS_ATTR = {
    "disabled": "disabled",
    "notrun": "not-run",
    "not-run": "not-run",
    "not_run": "not-run",
    "skipped": "skipped",
}
_RANK = {"passed": 0, "skipped": 1, "not-run": 1, "disabled": 1, "failed": 2, "error": 3}


def _duration(value: str | None) -> float | None:
    if not value:
        return None
    try:
        d = float(value.replace(",", ""))
    except ValueError:
        return None
    return d if d >= 0 else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if v == v and v not in (float("inf"), float("-inf")) else None


class _Case:
    __slots__ = ("depth", "duration", "message", "name", "status", "values")

    def __init__(self, name: str, duration: float | None, status: str, depth: int) -> None:
        self.name = name
        self.duration = duration
        self.status = status
        self.message: BoundedText | None = None
        self.values: dict[str, float] | None = None
        self.depth = depth


class JUnitParser:
    """``feed(chunk)`` returns the results completed so far; after a malformed chunk
    ``error`` is set (file and line) and further input is ignored."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.error: ReportError | None = None
        self.seen_root = False
        self._fed = 0
        self._out: list[ParsedResult] = []
        self._depth = 0
        self._case: _Case | None = None
        self._capture: BoundedText | None = None  # text of a failure/error/skipped element
        self._capture_depth = 0
        self._sep = False  # the next text of the capture starts a new line
        self._rerun: tuple[str, BoundedText] | None = None
        self._p = expat.ParserCreate()
        p = self._p
        p.buffer_text = True
        p.buffer_size = 1 << 16
        p.StartDoctypeDeclHandler = self._doctype
        p.EntityDeclHandler = self._entity
        p.ExternalEntityRefHandler = self._external
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars

    # -- security -------------------------------------------------------------------------
    def _doctype(self, *_args: Any) -> None:
        raise ForbiddenXML("DTD (<!DOCTYPE>) is not allowed in a test report")

    def _entity(self, *_args: Any) -> None:
        raise ForbiddenXML("entity declarations are not allowed in a test report")

    def _external(self, *_args: Any) -> int:
        raise ForbiddenXML("external entities are not allowed in a test report")

    # -- elements ---------------------------------------------------------------------------
    def _start(self, tag: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        self.seen_root = True
        case = self._case
        if tag == "testcase" and case is None:
            name = attrs.get("name") or "(unnamed)"
            classname = attrs.get("classname") or attrs.get("class") or ""
            full = f"{classname}::{name}" if classname else name
            status = _STATUS_ATTR.get((attrs.get("status") or "").lower(), "passed")
            self._case = _Case(bound_name(full), _duration(attrs.get("time")), status, self._depth)
            return
        if case is None:
            return
        if tag in _FAILURE_TAGS or tag == "skipped":
            new = _FAILURE_TAGS.get(tag, "skipped")
            if tag == "skipped" and case.status in ("disabled", "not-run"):
                new = case.status
            if _RANK[new] >= _RANK[case.status] or case.status == "passed":
                case.status = new
            text = BoundedText()
            msg = attrs.get("message")
            if msg:
                text.add(msg)
            case.message = text
            self._capture = text
            self._capture_depth = self._depth
            self._sep = bool(msg)
        elif tag in _RERUN_TAGS:
            text = BoundedText()
            msg = attrs.get("message")
            if msg:
                text.add(msg)
            self._rerun = (_RERUN_TAGS[tag], text)
            self._capture = text
            self._capture_depth = self._depth
            self._sep = bool(msg)
        elif self._capture is not None:
            self._sep = True
        elif tag == "property":
            value = _number(attrs.get("value"))
            prop = attrs.get("name")
            if prop and value is not None:
                if case.values is None:
                    case.values = {}
                case.values[prop[:200]] = value

    def _end(self, tag: str) -> None:
        case = self._case
        if case is not None:
            if self._capture is not None and self._depth == self._capture_depth:
                self._capture = None
                if self._rerun is not None and tag in _RERUN_TAGS:
                    status, text = self._rerun
                    self._rerun = None
                    self._out.append(ParsedResult(case.name, status, None, text.text(), None))
            if self._depth == case.depth:
                message = case.message.text() if case.message is not None else None
                self._out.append(ParsedResult(case.name, case.status, case.duration, message, case.values))
                self._case = None
        self._depth -= 1

    def _chars(self, data: str) -> None:
        capture = self._capture
        if capture is not None:
            if self._sep:
                if not data.strip():
                    return
                self._sep = False
                if capture.parts:
                    capture.add("\n")
            elif not capture.parts and not data.strip():
                return
            capture.add(data)

    # -- feeding ----------------------------------------------------------------------------
    def _fail(self, message: str) -> None:
        self.error = ReportError(self.path, self._p.CurrentLineNumber or self._p.ErrorLineNumber, message)

    def feed(self, chunk: bytes, final: bool = False) -> list[ParsedResult]:
        self._fed += len(chunk)
        if final and self.error is None and not self._fed:
            self.error = ReportError(self.path, None, "empty file: no XML in it")
        if self.error is None:
            try:
                self._p.Parse(chunk, final)
            except ForbiddenXML as exc:
                self._fail(str(exc))
            except expat.ExpatError as exc:
                self.error = ReportError(
                    self.path, exc.lineno, f"malformed XML: {expat.ErrorString(exc.code)} (column {exc.offset})"
                )
        out, self._out = self._out, []
        return out

    def close(self) -> list[ParsedResult]:
        return self.feed(b"", final=True)


def parse_junit_bytes(data: bytes, path: str = "<bytes>") -> tuple[list[ParsedResult], ReportError | None]:
    """Parse a whole report held in memory (tests and small files)."""
    parser = JUnitParser(path)
    out = parser.feed(data)
    out += parser.close()
    return out, parser.error


__all__ = ["JUnitParser", "bound_message", "parse_junit_bytes"]
