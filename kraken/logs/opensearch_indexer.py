"""Copies ``log_chunk`` rows to OpenSearch in bulk, behind a high-water mark (``plan``), then
deletes from the database the chunks indexed more than ``keep_hours`` ago.

A pass reads the chunks after the mark (no transaction held: on SQLite a write transaction
would hold every log write up while OpenSearch answers), sends them in one bulk request of at
most ``BATCH_LINES`` lines, and only once OpenSearch acknowledged every line moves the mark, in a
transaction that first checks that no other pass moved it meanwhile. A refused or unanswered
bulk leaves the mark where it was: the lines stay in the database and the next pass sends them
again (the same document ids: nothing is indexed twice).

Backpressure: one bulk request at a time, and after a failure (OpenSearch down, slow, or
answering 429) the passes wait, doubling from 1 s to ``MAX_BACKOFF_S``, so that a struggling
cluster is not hammered while the chunks pile up in the database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from kraken.core.db import Database
from kraken.logs.indexer import locked_state, save_mark
from kraken.logs.opensearch import LINE_BITS, STATE_ID, OpenSearchLogStore, index_name
from kraken.logs.plan import BATCH_CHUNKS, CHUNKS, Mark, live_gaps, plan
from kraken.models.base import utcnow
from kraken.models.logs import LogIndexState

log = logging.getLogger(__name__)

BATCH_LINES = 5000
MAX_BACKOFF_S = 60.0
RETENTION_EVERY_S = 3600.0


@dataclass
class Backoff:
    """When the next pass may talk to OpenSearch, after failures."""

    until: float = 0.0
    delay: float = 0.0
    retention_at: float = 0.0

    def failed(self, now: float) -> None:
        self.delay = min(MAX_BACKOFF_S, max(1.0, self.delay * 2))
        self.until = now + self.delay

    def succeeded(self) -> None:
        self.delay, self.until = 0.0, 0.0


_backoff: dict[int, Backoff] = {}


def backoff_of(store: OpenSearchLogStore) -> Backoff:
    return _backoff.setdefault(id(store), Backoff())


def documents(pieces: list[tuple[Any, int, int]], prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    """One document per line, blank lines included (the store gives the whole log back)."""
    docs = []
    for c, begin, end in pieces:
        created: datetime = c.created if isinstance(c.created, datetime) else datetime.fromisoformat(str(c.created))
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        index = index_name(prefix, created)
        for i, text in enumerate(c.text.split("\n")[begin:end], begin):
            line_no = c.first_line + i
            doc = {
                "line_id": (int(c.id) << LINE_BITS) | i,
                "job_id": c.job_id,
                "project_id": c.project_id,
                "branch_id": c.branch_id,
                "flow_id": c.flow_id,
                "step_index": c.step_index,
                "line_no": line_no,
                "time": created.isoformat(),
                "text": text,
            }
            docs.append((index, f"{c.job_id}-{line_no}", doc))
    return docs


async def _read_mark(db: Database) -> Mark:
    async with db.session() as session:
        state = (await session.execute(select(LogIndexState).where(LogIndexState.id == STATE_ID))).scalar_one_or_none()
    if state is None:
        return Mark()
    return Mark(state.last_chunk_id, state.partial_chunk_id, state.partial_line, live_gaps(state.gaps, time.time()))


async def index_pass(db: Database, store: OpenSearchLogStore, batch_lines: int = BATCH_LINES) -> int:
    """Send the next chunks to OpenSearch; the number of lines indexed (0: nothing to do, or
    OpenSearch did not take them: they wait in the database)."""
    now = time.time()
    mark = await _read_mark(db)
    chunks = CHUNKS.format(p="")
    async with db.session() as session:
        after = sa.text(chunks + "WHERE c.id > :mark ORDER BY c.id LIMIT :n")
        fresh = list((await session.execute(after, {"mark": mark.last_chunk_id, "n": BATCH_CHUNKS})).all())
        found = []
        if mark.gaps:
            stmt = sa.text(chunks + "WHERE c.id IN :ids").bindparams(sa.bindparam("ids", expanding=True))
            found = list((await session.execute(stmt, {"ids": sorted(mark.gaps)})).all())
    done = plan(mark, fresh, found, batch_lines, now)
    docs = documents(done.pieces, store.prefix)
    if docs:
        await store.bulk(docs)  # raises: the mark stays, the lines wait in the database
    async with db.transaction() as session:
        state = await locked_state(session, STATE_ID)
        if (state.last_chunk_id, state.partial_chunk_id, state.partial_line) != (
            mark.last_chunk_id,
            mark.partial_chunk_id,
            mark.partial_line,
        ):
            return 0  # another pass moved the mark meanwhile: what was sent again overwrote the same documents
        save_mark(state, done.mark, bool(done.pieces), len(docs))
        await _forget_indexed(session, done.mark, store.keep_hours)
    return len(docs)


async def _forget_indexed(session: Any, mark: Mark, keep_hours: float) -> None:
    """Delete the chunks OpenSearch holds that are older than ``keep_hours``: the database keeps
    only recent and not yet indexed lines (the outbox)."""
    cutoff = utcnow() - timedelta(hours=keep_hours)
    stmt = sa.text("DELETE FROM log_chunk WHERE id <= :mark AND created IS NOT NULL AND created <= :cutoff")
    params: dict[str, Any] = {"mark": mark.last_chunk_id, "cutoff": cutoff}
    if mark.gaps:  # ids skipped over may still appear: they are not indexed yet
        stmt = sa.text(
            "DELETE FROM log_chunk WHERE id <= :mark AND created IS NOT NULL AND created <= :cutoff AND id NOT IN :gaps"
        ).bindparams(sa.bindparam("gaps", expanding=True))
        params["gaps"] = sorted(mark.gaps)
    await session.execute(stmt, params)


async def index_all(db: Database, store: OpenSearchLogStore, budget_s: float = 10.0) -> int:
    """Passes until caught up, ``budget_s`` spent, or OpenSearch failing (then a growing pause)."""
    backoff = backoff_of(store)
    started = time.monotonic()
    if started < backoff.until:
        return 0
    total = 0
    try:
        while time.monotonic() - started < budget_s:
            lines = await index_pass(db, store)
            total += lines
            if lines == 0:
                break
        if started >= backoff.retention_at:
            await store.drop_old_indices(datetime.now(UTC))
            backoff.retention_at = started + RETENTION_EVERY_S
    except Exception as exc:  # OpenSearch unreachable, slow or refusing: the lines wait in the database
        store.template_ready = False  # a restarted cluster may have lost it
        backoff.failed(time.monotonic())
        log.warning("log indexing to OpenSearch failed (next try in %.0f s): %s", backoff.delay, exc)
        return total
    backoff.succeeded()
    return total
