"""The query language of the log search, parsed once into terms that every store understands.

- words separated by spaces, each of which must occur in the line (AND), anywhere: ``timeout``
  matches ``ConnectTimeoutError``; case is ignored;
- ``"a phrase"`` in double quotes: that exact text, spaces included (``\\"`` for a quote in it);
- every term needs at least 3 characters (the index is made of trigrams).

Anything else (an unclosed quote, a term too short, too many terms) is a ``QueryError`` whose
message says what and where: the API answers it with a 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MIN_TERM = 3
MAX_TERMS = 8
MAX_QUERY = 500
SYNTAX = (
    'words (all must occur, anywhere in a line, case ignored) and "quoted phrases" (exact text); '
    "each term at least 3 characters"
)


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class LogQuery:
    terms: tuple[str, ...]
    project_id: int | None = None
    branch_id: int | None = None
    flow_id: int | None = None
    job_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    before_id: int | None = None  # keyset: hits with a smaller line id than this
    service: str | None = None  # service logs: this role's ("all": every role's)
    min_level: int | None = None  # service logs: records at this level (logging's number) or above


def parse_terms(q: str) -> tuple[str, ...]:
    if len(q) > MAX_QUERY:
        raise QueryError(f"q: the query has {len(q)} characters, at most {MAX_QUERY} are allowed")
    terms: list[str] = []
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            start, i, buf = i, i + 1, []
            while i < n and q[i] != '"':
                if q[i] == "\\" and i + 1 < n and q[i + 1] in '"\\':
                    i += 1
                buf.append(q[i])
                i += 1
            if i >= n:
                raise QueryError(f"q: the quote opened at character {start + 1} is not closed")
            i += 1
            term = "".join(buf)
        else:
            start = i
            while i < n and not q[i].isspace() and q[i] != '"':
                i += 1
            term = q[start:i]
        if len(term.strip()) < MIN_TERM:
            raise QueryError(
                f"q: the term {term!r} at character {start + 1} is shorter than {MIN_TERM} characters"
                " (the index matches 3 characters or more)"
            )
        terms.append(term)
    if not terms:
        raise QueryError(f"q: the query is empty; syntax: {SYNTAX}")
    if len(terms) > MAX_TERMS:
        raise QueryError(f"q: {len(terms)} terms, at most {MAX_TERMS} are allowed")
    return tuple(terms)


def highlights(text: str, terms: tuple[str, ...]) -> list[tuple[int, int]]:
    """The spans (start, end) of every occurrence of every term in ``text``, merged, in order."""
    low = text.lower()
    spans: list[tuple[int, int]] = []
    for term in terms:
        t = term.lower()
        at = low.find(t)
        while at >= 0:
            spans.append((at, at + len(t)))
            at = low.find(t, at + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged
