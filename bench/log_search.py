"""Benchmark: log search p50/p95 across many stored lines, and the indexer's throughput.

Makes a database (a temporary SQLite file, or --database-url for PostgreSQL) through the real
migrations, with `--projects` projects, 20 jobs each, and `--lines` log lines in `log_chunk`
(1 000-line chunks of realistic, varied lines; one line in 10 000 is a `ConnectTimeoutError`,
and 20 unique "needles").  The first `--indexer-lines` lines go through the real indexer
(`kraken.logs.indexer.index_all`: its throughput); the rest of the index is bulk-loaded the way
the indexer would have filled it (SQLite: rows then FTS5 'rebuild'; PostgreSQL: COPY then the
GIN index), so that 10 million lines fit in minutes.  Then each kind of query runs `--repeat`
times through the store's `search` (what `GET /api/logs/search` calls), as an administrator
(every project) and as a user who sees one project in four.

    .venv/bin/python bench/log_search.py --lines 2000000                       # SQLite
    .venv/bin/python bench/log_search.py --lines 2000000 --database-url postgresql+asyncpg://postgres@127.0.0.1/DB
    ... --tsvector      # PostgreSQL: also time a tsvector GIN index (word matches only) for comparison
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from sqlmodel import select

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.core.migrate import upgrade
from kraken.logs import sqlite_index
from kraken.logs.database import DatabaseLogStore
from kraken.logs.indexer import index_pass
from kraken.logs.plan import CHUNKS, lines_of
from kraken.logs.query import LogQuery, parse_terms
from kraken.models import Branch, Job, Project, Run, Stage
from kraken.models.enums import FlowKind
from kraken.models.registry import load_all_models
from kraken.stage import check_stage_code

CHUNK = 1000
WORDS = "alpha beta gamma delta cache worker request response module build test link fetch parse".split()  # noqa: SIM905


def line(rng: random.Random, n: int) -> str:
    if n % 10_000 == 5_000:
        return f"ERROR: ConnectTimeoutError while fetching db-{rng.getrandbits(32):08x} after 30 s"
    k = n % 4
    if k == 0:
        return f"INFO worker-{n % 17} processed request {rng.getrandbits(48):012x} in {rng.randint(1, 900)} ms"
    if k == 1:
        return f"DEBUG cache hit key={rng.getrandbits(40):010x} {rng.choice(WORDS)} {rng.choice(WORDS)}"
    if k == 2:
        return f"  compiling src/{rng.choice(WORDS)}/{rng.choice(WORDS)}_{n % 997}.c -o build/{n % 991}.o"
    return f"test_{rng.choice(WORDS)}_{n % 5003} PASSED [{n % 100:3d}%]"


STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j%d" % i, "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any"}]} for i in range(20)]}
"""


async def seed_jobs(db: Database, projects: int) -> list[tuple[int, int]]:
    """(job, project) of one flow of 20 jobs per project, made through the orchestration."""
    schema = await check_stage_code(STAGE)
    jobs: list[tuple[int, int]] = []
    for n in range(projects):
        effects = Effects()
        async with db.transaction() as s:
            p = Project(name=f"p{n}")
            s.add(p)
            await s.flush()
            b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
            s.add(b)
            await s.flush()
            s.add(Stage(branch_id=b.id, name="s", schema_code=STAGE, schema_=schema))  # type: ignore[arg-type]
            await s.flush()
            flow = await orchestration.create_flow(s, b, FlowKind.CI, {}, effects)
        await orchestration.evaluate_pending(db, effects)
        async with db.session() as s:
            ids = (await s.execute(select(Job.id).join(Run).where(Run.flow_id == flow.id))).scalars().all()
        jobs += [(int(j), int(p.id)) for j in ids if j is not None and p.id is not None]
    return jobs


async def store_chunks(db: Database, chunks: Any) -> None:
    cols = ["id", "job_id", "seq", "step_index", "first_line", "line_count", "text", "created"]
    if db.is_sqlite:
        conn = sqlite3.connect(sqlite_index.main_path(db.url))
        conn.executemany(
            f"INSERT INTO log_chunk ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
            ((*c[:7], c[7].strftime(sqlite_index.TIME_FORMAT)) for c in chunks),
        )
        conn.commit()
        conn.close()
        return
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.copy_records_to_table(
            "log_chunk", records=((*c[:7], c[7].replace(tzinfo=UTC)) for c in chunks), columns=cols
        )
        await conn.commit()


async def bulk_index(db: Database) -> None:
    """The rest of the index as the indexer would have filled it, in bulk."""
    if db.is_sqlite:
        main = sqlite_index.main_path(db.url)
        conn = sqlite3.connect(sqlite_index.index_path(main), isolation_level=None)
        conn.execute("ATTACH DATABASE ? AS m", (str(main),))
        (last,) = conn.execute("SELECT last_chunk_id FROM log_index_state").fetchone()
        conn.execute("DROP TRIGGER log_line_ai")
        conn.execute("BEGIN")
        chunks = conn.execute(CHUNKS.format(p="m.") + "WHERE c.id > ? ORDER BY c.id", (last,))
        while batch := chunks.fetchmany(200):
            pieces = [(c, 0, c.line_count) for c in map(sqlite_index.Chunk._make, batch)]
            conn.executemany(sqlite_index.INSERT, lines_of(pieces))
        conn.execute("INSERT INTO log_line_fts(log_line_fts) VALUES ('rebuild')")
        conn.execute(
            "UPDATE log_index_state SET last_chunk_id = (SELECT max(id) FROM m.log_chunk), "
            "partial_chunk_id = NULL, partial_line = 0, indexed_lines = (SELECT count(*) FROM log_line)"
        )
        conn.execute("COMMIT")
        conn.executescript(sqlite_index.SCHEMA)  # the trigger again
        conn.close()
        return
    async with db.engine.begin() as conn:
        last = (await conn.exec_driver_sql("SELECT last_chunk_id FROM log_index_state")).scalar_one()
        await conn.exec_driver_sql("DROP INDEX ix_log_line_text_trgm")
        await conn.exec_driver_sql(
            "INSERT INTO log_line (job_id, project_id, branch_id, flow_id, step_index, line_no, created, text) "
            "SELECT c.job_id, b.project_id, f.branch_id, r.flow_id, c.step_index, c.first_line + l.n - 1, c.created, "
            "l.text FROM log_chunk c JOIN job j ON j.id = c.job_id JOIN run r ON r.id = j.run_id "
            "JOIN flow f ON f.id = r.flow_id JOIN branch b ON b.id = f.branch_id, "
            "unnest(string_to_array(c.text, E'\\n')) WITH ORDINALITY AS l(text, n) "
            f"WHERE c.id > {int(last)} AND l.text <> '' ORDER BY c.id, l.n"
        )
        await conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
        await conn.exec_driver_sql("CREATE INDEX ix_log_line_text_trgm ON log_line USING gin (text gin_trgm_ops)")
        await conn.exec_driver_sql(
            "UPDATE log_index_state SET last_chunk_id = (SELECT max(id) FROM log_chunk), partial_chunk_id = NULL, "
            "partial_line = 0, indexed_lines = (SELECT count(*) FROM log_line)"
        )
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE log_line")


async def tsvector_compare(db: Database, repeat: int) -> dict[str, Any]:
    """PostgreSQL full text (tsvector, 'simple' configuration) on the same rows: word matches only."""
    out: dict[str, Any] = {}
    async with db.engine.begin() as conn:
        t0 = time.perf_counter()
        await conn.exec_driver_sql("CREATE INDEX ix_bench_tsv ON log_line USING gin (to_tsvector('simple', text))")
        out["index_build_s"] = round(time.perf_counter() - t0, 1)
    for name, words in {"rare word": "connecttimeouterror", "common word": "cache", "no match": "zzqqxxyy"}.items():
        times, hits = [], 0
        for _ in range(repeat):
            t1 = time.perf_counter()
            async with db.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.text(
                            "SELECT id FROM log_line WHERE to_tsvector('simple', text) @@ plainto_tsquery('simple', :w)"
                            " ORDER BY id DESC LIMIT 51"
                        ),
                        {"w": words},
                    )
                ).all()
            times.append((time.perf_counter() - t1) * 1000)
            hits = len(rows)
        out[name] = {"hits": hits, "p50_ms": round(statistics.median(times), 1), "p95_ms": round(pct(times, 0.95), 1)}
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql("DROP INDEX ix_bench_tsv")
    return out


def gen_chunks(lines: int, jobs: list[int], seed_: int = 7) -> Any:
    """(id, job, seq, step, first line, line count, text, created) of 1 000-line chunks, jobs in turn."""
    rng = random.Random(seed_)
    now = datetime.now(UTC).replace(tzinfo=None)
    needles = {lines * k // 21: f"needle-{k:02d}-{rng.getrandbits(32):08x} found here" for k in range(1, 21)}
    n = 0
    cid = 0
    while n < lines:
        cid += 1
        job = jobs[(cid - 1) % len(jobs)]
        count = min(CHUNK, lines - n)
        text = "\n".join(needles.get(n + i) or line(rng, n + i) for i in range(count))
        yield (cid, job, cid, 0, (cid - 1) // len(jobs) * CHUNK, count, text, now)
        n += count


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


SEEDED_JOBS = (
    "SELECT j.id, b.project_id FROM job j JOIN run r ON r.id = j.run_id JOIN flow f ON f.id = r.flow_id"
    " JOIN branch b ON b.id = f.branch_id"
)


async def seed(db: Database, args: argparse.Namespace, out: dict[str, Any]) -> list[tuple[int, int]]:
    jobs = await seed_jobs(db, args.projects)
    t0 = time.perf_counter()
    await store_chunks(db, gen_chunks(args.lines, [j for j, _ in jobs]))
    out["store_chunks_s"] = round(time.perf_counter() - t0, 1)

    # the real indexer on the first lines: its throughput
    t0 = time.perf_counter()
    indexed = 0
    while indexed < min(args.indexer_lines, args.lines):
        indexed += (await index_pass(db, settle=False)).lines
    el = time.perf_counter() - t0
    out["indexer"] = {"lines": indexed, "seconds": round(el, 1), "lines_per_s": round(indexed / el)}
    t0 = time.perf_counter()
    await bulk_index(db)
    out["bulk_index_rest_s"] = round(time.perf_counter() - t0, 1)
    return jobs


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load_all_models()
    tmp = args.keep or tempfile.mkdtemp()
    url = args.database_url or f"sqlite+aiosqlite:///{tmp}/kraken.db"
    db = Database(url)
    out: dict[str, Any] = {"database": "sqlite" if db.is_sqlite else "postgresql"}
    if args.reuse:  # a database an earlier run seeded and kept (``--keep``, or --database-url)
        async with db.session() as s:
            found = await s.execute(sa.text(SEEDED_JOBS))
            jobs = [(int(j), int(p)) for j, p in found.all()]
            out["lines"] = await DatabaseLogStore(db).indexed_lines(s)
    else:
        await upgrade(url)
        out["lines"] = args.lines
        jobs = await seed(db, args, out)

    store = DatabaseLogStore(db)
    projects = sorted({p for _, p in jobs})
    visible = set(projects[::4])
    queries = {
        "rare substring (1 line in 10 000)": "connecttimeout",
        "unique needle": "needle-13",
        "common word (every 4th line)": "cache hit",
        "two terms": 'ERROR "db-"',
        "no match": "zzqqxxyy",
    }
    results: dict[str, Any] = {}
    for name, q in queries.items():
        for who, projects in (("admin", None), ("user_quarter", visible)):
            times, hits = [], 0
            for _ in range(args.repeat):
                t1 = time.perf_counter()
                async with db.session() as session:
                    page = await store.search(session, LogQuery(terms=parse_terms(q), limit=50), projects)
                times.append((time.perf_counter() - t1) * 1000)
                hits = len(page.hits)
            results[f"{name} / {who}"] = {
                "hits": hits,
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(pct(times, 0.95), 1),
            }
    out["queries"] = results
    if args.tsvector and not db.is_sqlite:
        out["tsvector"] = await tsvector_compare(db, args.repeat)
    if db.is_sqlite:
        out["index_file_mb"] = round(sqlite_index.index_path(Path(f"{tmp}/kraken.db")).stat().st_size / 2**20)
    await db.dispose()
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--projects", type=int, default=8)
    ap.add_argument("--indexer-lines", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--tsvector", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="SQLite: make (and keep) the database in DIR")
    ap.add_argument("--reuse", action="store_true", help="query the database seeded before (--keep or --database-url)")
    args = ap.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
