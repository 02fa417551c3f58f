"""What one indexing pass takes: the pure part of the indexer, shared by both databases.

High-water mark and gaps: chunk ids are given out when a row is inserted, but on PostgreSQL
the transactions of several server replicas commit in any order, so a chunk with a smaller id
can become visible after a larger one was indexed.  The ids skipped over are kept as ``gaps``
and looked for again on each pass, for ``GAP_SECONDS``; a gap that never appears was a rolled
back insert (or a chunk deleted before it was indexed).  A chunk longer than a batch (an agent
sends up to thousands of lines at once) is indexed over several passes (``partial``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GAP_SECONDS = 300.0
# Writes first: while chunks keep arriving (a job printing fast), the indexer waits until the
# newest is SETTLE_SECONDS old, so that it never competes with a burst of log writes for the
# CPU (in ``kraken serve`` it shares the process); unless the backlog reaches MAX_LAG_CHUNKS.
SETTLE_SECONDS = 0.5
MAX_LAG_CHUNKS = 1000
MAX_GAPS = 10_000
BATCH_CHUNKS = 500

# when a chunk's lines were stored (chunks stored before migration 0021 have no time of their own)
CHUNK_TIME = "COALESCE(c.created, j.started, j.created)"
# where a chunk's job belongs
CHUNK_JOINS = """
FROM {p}log_chunk c JOIN {p}job j ON j.id = c.job_id JOIN {p}run r ON r.id = j.run_id
JOIN {p}flow f ON f.id = r.flow_id JOIN {p}branch b ON b.id = f.branch_id
"""
# columns of a chunk as the indexer reads it (with where its job belongs)
CHUNKS = (
    """
SELECT c.id, c.job_id, c.step_index, c.first_line, c.line_count, c.text,
       """
    + CHUNK_TIME
    + """ AS created, r.flow_id, f.branch_id, b.project_id"""
    + CHUNK_JOINS
)


@dataclass
class Mark:
    last_chunk_id: int = 0
    partial_chunk_id: int | None = None
    partial_line: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # chunk id -> when first missed


@dataclass
class Plan:
    pieces: list[tuple[Any, int, int]]  # (chunk, first line, end line)
    mark: Mark


def settling(newest_age_s: float | None, backlog_chunks: int) -> bool:
    """Whether this pass should wait: the newest chunk is very recent and the backlog is small."""
    return newest_age_s is not None and newest_age_s < SETTLE_SECONDS and backlog_chunks < MAX_LAG_CHUNKS


def live_gaps(gaps: list[Any], now: float) -> dict[int, float]:
    return {int(g): float(t) for g, t in gaps if now - float(t) < GAP_SECONDS}


def plan(mark: Mark, fresh: list[Any], found_gaps: list[Any], batch_lines: int, now: float) -> Plan:
    """The pieces of ``fresh`` chunks (ordered by id, after the mark) that fit ``batch_lines``,
    plus the ``found_gaps`` whole, and the mark after them."""
    gaps = {g: t for g, t in mark.gaps.items() if all(g != c.id for c in found_gaps)}
    pieces: list[tuple[Any, int, int]] = [(c, 0, c.line_count) for c in found_gaps]
    budget, last = batch_lines, mark.last_chunk_id
    partial_id, partial_line = None, 0
    for c in fresh:
        if budget <= 0:
            break
        for missing in range(last + 1, int(c.id)):
            gaps.setdefault(missing, now)
        begin = mark.partial_line if c.id == mark.partial_chunk_id else 0
        if c.line_count - begin <= budget:
            pieces.append((c, begin, c.line_count))
            budget -= c.line_count - begin
            last = int(c.id)
        else:
            pieces.append((c, begin, begin + budget))
            partial_id, partial_line = int(c.id), begin + budget
            break
    if len(gaps) > MAX_GAPS:  # keep the newest; the oldest are surely rolled back by now
        gaps = dict(sorted(gaps.items())[-MAX_GAPS:])
    return Plan(pieces, Mark(last, partial_id, partial_line, gaps))


def lines_of(pieces: list[tuple[Any, int, int]]) -> list[tuple[Any, ...]]:
    """(job, project, branch, flow, step, line number, created, text) of every non-blank line."""
    rows = []
    for c, begin, end in pieces:
        j, p, b, f, s, cr, first = c.job_id, c.project_id, c.branch_id, c.flow_id, c.step_index, c.created, c.first_line
        for i, text in enumerate(c.text.split("\n")[begin:end], begin):
            if text and not text.isspace():  # blank lines match nothing
                rows.append((j, p, b, f, s, first + i, cr, text))
    return rows
