"""The log search index of the embedded SQLite database, in a file of its own beside it
(``kraken.db`` -> ``kraken.logsearch.db``): an FTS5 table (trigram tokenizer: substring
matches) whose content is its ``log_line`` table, kept in step by triggers.

Why a file of its own: SQLite has one writer per file, and FTS5 inserts cost 20-50 µs a line
plus segment merges of up to a second; in the main file every log write would wait for them
(a 200 000-line job went from 0.1 s to 8 s).  Here the indexer writes only this file, reading
``log_chunk`` through a read-only ATTACH (WAL: readers never block the writer), in a worker
thread: the event loop and the main file's writers never wait for it.  The file is derived
data: deleted, it is rebuilt from ``log_chunk``; found ahead of the main database (a restored
backup), it is emptied and rebuilt.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kraken.core.files import private_file
from kraken.logs.plan import BATCH_CHUNKS, CHUNKS, Mark, lines_of, live_gaps, plan, settling
from kraken.logs.query import LogQuery
from kraken.logs.store import SearchHit, ServiceHit, ServiceRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS log_line (
    id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, project_id INTEGER NOT NULL, branch_id INTEGER NOT NULL,
    flow_id INTEGER NOT NULL, step_index INTEGER, line_no INTEGER NOT NULL, created TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_log_line_job_id ON log_line (job_id);
CREATE VIRTUAL TABLE IF NOT EXISTS log_line_fts USING fts5(
    text, content='log_line', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS log_line_ai AFTER INSERT ON log_line BEGIN
    INSERT INTO log_line_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS log_line_ad AFTER DELETE ON log_line BEGIN
    INSERT INTO log_line_fts(log_line_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE IF NOT EXISTS service_log (
    id INTEGER PRIMARY KEY, created TEXT NOT NULL, service TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    level INTEGER NOT NULL, logger TEXT NOT NULL, text TEXT NOT NULL, flow_id INTEGER, run_id INTEGER, job_id INTEGER
);
CREATE INDEX IF NOT EXISTS ix_service_log_created ON service_log (created);
CREATE VIRTUAL TABLE IF NOT EXISTS service_log_fts USING fts5(
    text, content='service_log', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS service_log_ai AFTER INSERT ON service_log BEGIN
    INSERT INTO service_log_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS service_log_ad AFTER DELETE ON service_log BEGIN
    INSERT INTO service_log_fts(service_log_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TABLE IF NOT EXISTS log_index_state (
    id INTEGER PRIMARY KEY, last_chunk_id INTEGER NOT NULL, partial_chunk_id INTEGER, partial_line INTEGER NOT NULL,
    gaps TEXT NOT NULL, indexed_lines INTEGER NOT NULL
);
"""

Chunk = namedtuple("Chunk", "id job_id step_index first_line line_count text created flow_id branch_id project_id")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a UTC time in SQLite
INSERT = (
    "INSERT INTO log_line (job_id, project_id, branch_id, flow_id, step_index, line_no, created, text)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def index_path(main: Path) -> Path:
    return main.with_name(main.stem + ".logsearch.db")


def main_path(url: str) -> Path:
    """The file of a ``sqlite+aiosqlite:///...`` URL."""
    return Path(url.split(":///", 1)[1].split("?", 1)[0])


def _connect(main: Path, attach: bool) -> sqlite3.Connection:
    private_file(index_path(main))  # log lines: readable by Kraken only, as the database (0600)
    conn = sqlite3.connect(
        "file:" + quote(str(index_path(main))), timeout=30, isolation_level=None, check_same_thread=False, uri=True
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    if attach:
        conn.execute("ATTACH DATABASE ? AS m", ("file:" + quote(str(main)) + "?mode=ro",))
    return conn


def index_pass(main: Path, batch_lines: int, settle: bool = True) -> tuple[int, int]:
    """One pass (runs in a worker thread): (chunks or parts of chunks, lines) indexed."""
    conn = _connect(main, attach=True)
    try:
        conn.execute("BEGIN")  # deferred: the write lock is taken on this file only, at the first write
        row = conn.execute(
            "SELECT last_chunk_id, partial_chunk_id, partial_line, gaps, indexed_lines FROM log_index_state"
        ).fetchone()
        if row is None:
            row = (0, None, 0, "[]", 0)
            conn.execute("INSERT INTO log_index_state VALUES (1, 0, NULL, 0, '[]', 0)")
        now = time.time()
        mark = Mark(row[0], row[1], row[2], live_gaps(json.loads(row[3]), now))
        newest, age = conn.execute(
            "SELECT id, (julianday('now') - julianday(created)) * 86400.0 FROM m.log_chunk ORDER BY id DESC LIMIT 1"
        ).fetchone() or (0, None)
        if mark.last_chunk_id > newest:  # the main database is older than this index (a restored backup)
            conn.execute("DELETE FROM log_line")
            mark, row = Mark(), (0, None, 0, "[]", 0)
        if settle and settling(age, newest - mark.last_chunk_id):
            conn.execute("ROLLBACK")
            return 0, 0
        chunks = CHUNKS.format(p="m.")
        fresh = [
            Chunk._make(r)
            for r in conn.execute(chunks + "WHERE c.id > ? ORDER BY c.id LIMIT ?", (mark.last_chunk_id, BATCH_CHUNKS))
        ]
        found: list[Any] = []
        if mark.gaps:
            ids = ",".join(str(int(g)) for g in mark.gaps)
            found = [Chunk._make(r) for r in conn.execute(chunks + f"WHERE c.id IN ({ids})")]
        done = plan(mark, fresh, found, batch_lines, now)
        rows = lines_of(done.pieces)
        if rows:
            conn.executemany(INSERT, rows)
        m = done.mark
        conn.execute(
            "UPDATE log_index_state SET last_chunk_id = ?, partial_chunk_id = ?, partial_line = ?, gaps = ?,"
            " indexed_lines = indexed_lines + ?",
            (m.last_chunk_id, m.partial_chunk_id, m.partial_line, json.dumps(sorted(m.gaps.items())), len(rows)),
        )
        conn.execute("COMMIT")
        return len(done.pieces), len(rows)
    finally:
        conn.close()


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def search(main: Path, query: LogQuery, projects: set[int] | None) -> list[SearchHit]:
    """Newest first: the FTS5 table drives (CROSS JOIN keeps it the outer loop), in rowid order."""
    where = ["log_line_fts MATCH :m"]
    params: dict[str, Any] = {
        "n": query.limit + 1,
        "m": " AND ".join('"' + t.replace('"', '""') + '"' for t in query.terms),
    }
    if query.before_id is not None:
        where.append("f.rowid < :before")
        params["before"] = query.before_id
    if projects is not None:
        where.append(f"l.project_id IN ({','.join(str(int(p)) for p in sorted(projects))})")
    for name in ("project_id", "branch_id", "flow_id", "job_id"):
        if getattr(query, name) is not None:
            where.append(f"l.{name} = :{name}")
            params[name] = getattr(query, name)
    if query.since is not None:
        where.append("l.created >= :since")
        params["since"] = _time(query.since)
    if query.until is not None:
        where.append("l.created < :until")
        params["until"] = _time(query.until)
    sql = (
        "SELECT l.id, l.job_id, l.project_id, l.branch_id, l.flow_id, l.step_index, l.line_no, l.created, l.text"
        f" FROM log_line_fts f CROSS JOIN log_line l ON l.id = f.rowid WHERE {' AND '.join(where)}"
        " ORDER BY f.rowid DESC LIMIT :n"
    )
    conn = _connect(main, attach=False)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    return [
        SearchHit(
            line_id=r[0],
            job_id=r[1],
            project_id=r[2],
            branch_id=r[3],
            flow_id=r[4],
            step_index=r[5],
            line_no=r[6],
            time=datetime.fromisoformat(r[7]).replace(tzinfo=UTC),
            text=r[8],
        )
        for r in rows
    ]


def indexed_lines(main: Path) -> int:
    conn = _connect(main, attach=False)
    try:
        row = conn.execute("SELECT indexed_lines FROM log_index_state").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def delete_jobs(main: Path, job_ids: list[int]) -> None:
    conn = _connect(main, attach=False)
    try:
        conn.execute(f"DELETE FROM log_line WHERE job_id IN ({','.join(str(int(j)) for j in job_ids)})")
    finally:
        conn.close()


# ---------------------------------------------------------------- service logs (KRAKEN_SERVICE_LOGS_STORE)

SERVICE_COLUMNS = "created, service, host, pid, level, logger, text, flow_id, run_id, job_id"


def insert_service_records(main: Path, records: list[ServiceRecord]) -> None:
    """One transaction on this file (a worker thread): the main file's writers never wait."""
    rows = [
        (_time(r.time), r.service, r.host, r.pid, r.level, r.logger, r.text, r.flow_id, r.run_id, r.job_id)
        for r in records
    ]
    conn = _connect(main, attach=False)
    try:
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO service_log ({SERVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


def search_service_records(main: Path, query: LogQuery) -> list[ServiceHit]:
    """As ``search``: the FTS5 table drives, newest first."""
    where = ["service_log_fts MATCH :m"]
    params: dict[str, Any] = {
        "n": query.limit + 1,
        "m": " AND ".join('"' + t.replace('"', '""') + '"' for t in query.terms),
    }
    if query.before_id is not None:
        where.append("f.rowid < :before")
        params["before"] = query.before_id
    if query.service not in (None, "all"):
        where.append("l.service = :service")
        params["service"] = query.service
    if query.min_level is not None:
        where.append("l.level >= :level")
        params["level"] = query.min_level
    for name in ("flow_id", "job_id"):
        if getattr(query, name) is not None:
            where.append(f"l.{name} = :{name}")
            params[name] = getattr(query, name)
    if query.since is not None:
        where.append("l.created >= :since")
        params["since"] = _time(query.since)
    if query.until is not None:
        where.append("l.created < :until")
        params["until"] = _time(query.until)
    sql = (
        f"SELECT l.id, {', '.join('l.' + c.strip() for c in SERVICE_COLUMNS.split(','))}"
        f" FROM service_log_fts f CROSS JOIN service_log l ON l.id = f.rowid WHERE {' AND '.join(where)}"
        " ORDER BY f.rowid DESC LIMIT :n"
    )
    conn = _connect(main, attach=False)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    return [
        ServiceHit(
            r[0],
            ServiceRecord(datetime.fromisoformat(r[1]).replace(tzinfo=UTC), r[2], r[3], r[4], r[5], r[6], r[7], *r[8:]),
        )
        for r in rows
    ]


def purge_service_records(main: Path, before: datetime) -> int:
    conn = _connect(main, attach=False)
    try:
        return conn.execute("DELETE FROM service_log WHERE created < ?", (_time(before),)).rowcount
    finally:
        conn.close()
