"""The SQL of a run's results page: a filter that yields WHERE clauses, and a keyset cursor per
sort order.

The statements are tuned (see docs/benchmarks.md, "Results API"): the page is chosen from
``test_result`` alone, read in index order, and the names are joined to those rows only. Integers
are written into the SQL rather than bound, because a prepared statement's generic plan cannot
see that a run holds a million rows and its regressions a hundred; every value written in is an
``int`` or a ``float`` (checked here), and the strings (part of a test name, an agents group)
are bound.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import orjson

from kraken.results.statuses import (
    CHANGE_CODES,
    CHANGE_FIX,
    CHANGE_NONE,
    CHANGE_REGRESSION,
    ERROR,
    FAILED,
    STATUS_CODES,
)
from kraken.schemas.ints import INT64_MAX, INT64_MIN

Sort = Literal["relevancy", "id", "-id", "-duration"]
SORTS: tuple[str, ...] = get_args(Sort)

# columns of the page, chosen from test_result alone
PAGE_COLUMNS = (
    "r.id, r.status, r.change, r.age, r.instability, r.flaky, r.flaky_rule, r.relevancy, r.duration, "
    "r.job_id, r.message, r.values_json, r.perf_change, r.test_case_id, r.env_id"
)
# columns of the answer: the page joined with its test's name and environment
ITEM_COLUMNS = (
    "p.id, t.name AS test, p.status, p.change, p.age, p.instability, p.flaky, p.flaky_rule, p.relevancy, "
    "p.duration, p.job_id, e.system, e.agents_group, e.config, p.message, p.values_json, p.perf_change, "
    "p.test_case_id"
)
_FAILING = frozenset({FAILED, ERROR})


class InvalidFilter(ValueError):
    """A filter value that names no status or change (the API answers 422)."""


class InvalidCursor(ValueError):
    """A cursor that no page of this sort order produced (the API answers 400)."""


def parse_codes(value: str | None, codes: Mapping[str, int], what: str) -> tuple[int, ...] | None:
    """``"failed,error"`` -> their codes; None or "" -> None (no filter)."""
    if not value:
        return None
    out = []
    for raw in value.split(","):
        name = raw.strip()
        if name not in codes:
            raise InvalidFilter(f"unknown {what} {name!r}: one of {sorted(codes)}")
        out.append(codes[name])
    return tuple(out)


def encode_cursor(*parts: float | int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def _number(p: object) -> bool:
    """A float, or an int the database can compare (a bigger one would overflow its driver)."""
    return isinstance(p, float) or (isinstance(p, int) and not isinstance(p, bool) and INT64_MIN <= p <= INT64_MAX)


def decode_cursor(cursor: str, n: int) -> list[int | float]:
    """The ``n`` numbers of a cursor made by :func:`encode_cursor`, or InvalidCursor."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        parts = None
    if not isinstance(parts, list) or len(parts) != n or not all(_number(p) for p in parts):
        raise InvalidCursor("invalid cursor")
    return parts


def _in(column: str, codes: Iterable[int]) -> str:
    return f"{column} IN ({', '.join(str(int(c)) for c in codes)})"


@dataclass(frozen=True)
class ResultFilter:
    """Which of a run's results a page shows. ``name`` (part of a test name, matched literally)
    needs ``project_id``, the project whose test cases are searched. ``age`` and ``instability``
    are inclusive ``(min, max)`` ranges (either end None: open); ``agents_group`` is matched
    exactly against the results' environments."""

    run_id: int
    statuses: tuple[int, ...] | None = None
    changes: tuple[int, ...] | None = None
    flaky: bool | None = None
    job_id: int | None = None
    name: str | None = None
    project_id: int = 0
    age: tuple[int | None, int | None] = (None, None)
    instability: tuple[int | None, int | None] = (None, None)
    agents_group: str | None = None
    env_ids: tuple[int, ...] | None = None  # the agents group's environments among the run's (see narrowed)

    @classmethod
    def parse(
        cls,
        run_id: int,
        *,
        status: str | None = None,
        change: str | None = None,
        flaky: bool | None = None,
        job_id: int | None = None,
        name: str | None = None,
        age: tuple[int | None, int | None] = (None, None),
        instability: tuple[int | None, int | None] = (None, None),
        agents_group: str | None = None,
    ) -> ResultFilter:
        """The filter of the API's query parameters (comma-separated status and change names;
        a range whose min is above its max is refused, naming its ``<what>_min`` parameter)."""
        for what, (lo, hi) in (("age", age), ("instability", instability)):
            if lo is not None and hi is not None and lo > hi:
                raise InvalidFilter(f"{what}_min ({lo}) is greater than {what}_max ({hi})")
        return cls(
            run_id=run_id,
            statuses=parse_codes(status, STATUS_CODES, "status"),
            changes=parse_codes(change, CHANGE_CODES, "change"),
            flaky=flaky,
            job_id=job_id,
            name=name or None,
            age=age,
            instability=instability,
            agents_group=agents_group or None,
        )

    @property
    def counted_by_matrix(self) -> bool:
        """Whether the per-job summaries' matrix can count the matches (status, change and
        flaky only); the other filters are counted by :meth:`count_sql`."""
        return not self.name and self.age == (None, None) and self.instability == (None, None) and not self.agents_group

    def where(self, sqlite: bool) -> list[str]:
        """The WHERE clauses on ``test_result r`` (ANDed); :meth:`params` binds the name's."""
        st, ch = self.statuses, self.changes
        where = [f"r.run_id = {int(self.run_id)}"]
        if st is not None:
            where.append(_in("r.status", st))
        if ch is not None:
            where.append(_in("r.change", ch))
            if CHANGE_NONE not in ch:
                where.append("r.change <> 0")  # the partial index's condition, spelled out for SQLite
        where.extend(self._relevancy())
        if self.flaky is not None:
            where.append(f"r.flaky = {int(self.flaky)}" if sqlite else f"r.flaky = {'TRUE' if self.flaky else 'FALSE'}")
        if self.job_id is not None:
            where.append(f"r.job_id = {int(self.job_id)}")
        for column, (lo, hi) in (("r.age", self.age), ("r.instability", self.instability)):
            if lo is not None:
                where.append(f"{column} >= {int(lo)}")
            if hi is not None:
                where.append(f"{column} <= {int(hi)}")
        if self.env_ids is not None:
            where.append(_in("r.env_id", self.env_ids) if self.env_ids else "1 = 0")
        elif self.agents_group:
            where.append("r.env_id IN (SELECT id FROM test_env WHERE agents_group = :group)")
        if self.name:
            where.append(
                "r.test_case_id IN (SELECT id FROM test_case WHERE project_id = :project AND name LIKE :q ESCAPE '\\')"
            )
        return where

    def _relevancy(self) -> list[str]:
        # relevancy > 0 exactly for failed and error results: say so, so that the
        # (run_id, relevancy, id) index range holds only the rows that can match
        st, ch = self.statuses, self.changes
        if (st is not None and set(st) <= _FAILING) or (ch is not None and set(ch) == {CHANGE_REGRESSION}):
            return ["r.relevancy >= 1"]
        if (st is not None and not set(st) & _FAILING) or (ch is not None and set(ch) == {CHANGE_FIX}):
            return ["r.relevancy = 0"]
        return []

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.agents_group and self.env_ids is None:
            out["group"] = self.agents_group
        if self.name:
            escaped = self.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out |= {"project": self.project_id, "q": f"%{escaped}%"}
        return out

    def count_sql(self, sqlite: bool) -> str:
        """Counts the matching results (only needed when not :attr:`counted_by_matrix`): from the
        jobs' histograms (``results_hist``, a few rows per job) unless a name is searched, which
        only the results themselves can say."""
        if self.name:
            return f"SELECT count(*) FROM test_result r WHERE {' AND '.join(self.where(sqlite))}"
        return f"SELECT COALESCE(SUM(h.n), 0) FROM results_hist h WHERE {self._hist_where(sqlite)}"

    def combos_sql(self, sqlite: bool) -> str:
        """The (status, change) pairs that matching results have, from the histograms (no name)."""
        return f"SELECT DISTINCT h.status, h.change FROM results_hist h WHERE {self._hist_where(sqlite)}"

    def envs_sql(self) -> str:
        """The environments of the run's jobs: ``env_id``, whether it is in the agents group."""
        return (
            "SELECT DISTINCT rj.env_id, CASE WHEN e.agents_group = :group THEN 1 ELSE 0 END "
            f"FROM results_job rj JOIN test_env e ON e.id = rj.env_id WHERE rj.run_id = {int(self.run_id)}"
        )

    def narrowed(self, combos: Iterable[tuple[int, int]], envs: Iterable[tuple[int, int]] = ()) -> ResultFilter:
        """The same results, said so that the page's indexes serve it: when the filter gives none,
        the changes the matching results have (``combos``, from :meth:`combos_sql`) if none of them
        is unchanged, and their statuses if all fail (a sparse age or instability filter then reads
        the changed or the failing results only, not the whole run; a condition that would not
        narrow the index range is not added: it only misleads the planner), and the agents group as
        the run's environments in it (``envs``, from :meth:`envs_sql`), or no condition when all
        of them are."""
        out = self
        pairs = set(combos)
        statuses = {int(st) for st, _ in pairs}
        if pairs and self.statuses is None and statuses <= _FAILING:  # then relevancy >= 1: an index range
            out = replace(out, statuses=tuple(sorted(statuses)))
        if pairs and self.changes is None and CHANGE_NONE not in {int(ch) for _, ch in pairs}:
            out = replace(out, changes=tuple(sorted({int(ch) for _, ch in pairs})))
        groups = list(envs)
        if self.agents_group and groups:
            inside = tuple(sorted(int(e) for e, yes in groups if yes))
            out = replace(out, agents_group=None) if len(inside) == len(groups) else replace(out, env_ids=inside)
        return out

    def _hist_where(self, sqlite: bool) -> str:
        where = [f"h.run_id = {int(self.run_id)}"]
        if self.statuses is not None:
            where.append(_in("h.status", self.statuses))
        if self.changes is not None:
            where.append(_in("h.change", self.changes))
        if self.flaky is not None:
            where.append(f"h.flaky = {int(self.flaky)}" if sqlite else f"h.flaky = {'TRUE' if self.flaky else 'FALSE'}")
        if self.job_id is not None:
            where.append(f"h.job_id = {int(self.job_id)}")
        for column, (lo, hi) in (("h.age", self.age), ("h.instability", self.instability)):
            if lo is not None:
                where.append(f"{column} >= {int(lo)}")
            if hi is not None:
                where.append(f"{column} <= {int(hi)}")
        if self.agents_group:
            # a job's results all have its environment (results_job.env_id)
            where.append(
                "h.job_id IN (SELECT rj.job_id FROM results_job rj JOIN test_env e ON e.id = rj.env_id "
                f"WHERE rj.run_id = {int(self.run_id)} AND e.agents_group = :group)"
            )
        return " AND ".join(where)

    def matrix_total(self, matrix: Iterable[Iterable[int]]) -> int:
        """The number of matching results from a summary's ``[status, change, flaky, n]`` rows."""
        st, ch, fl = self.statuses, self.changes, self.flaky
        total = 0
        for s, c, f, n in matrix:
            if (st is None or s in st) and (ch is None or c in ch) and (fl is None or bool(f) == fl):
                total += n
        return total


@dataclass(frozen=True)
class Keyset:
    """A sort order: its ORDER BY, and the cursor that continues after a page's last row.

    ``after`` gives the clauses that skip what the cursor's page showed: either one more WHERE
    clause, or (relevancy) two legs, each an index range, whose pages are merged."""

    sort: Sort

    @property
    def order(self) -> str:
        return {
            "relevancy": "r.relevancy DESC, r.id DESC",
            "-duration": "COALESCE(r.duration, -1) DESC, r.id DESC",
            "id": "r.id ASC",
            "-id": "r.id DESC",
        }[self.sort]

    def after(self, cursor: str | None) -> tuple[list[str], list[str]]:
        """(extra WHERE clauses, legs) for the page after ``cursor`` (nothing for the first page)."""
        if not cursor:
            return [], []
        if self.sort == "relevancy":
            # two index ranges: the rest of the cursor's relevancy, then the lower ones
            c1, c2 = (int(c) for c in decode_cursor(cursor, 2))
            return [], [f"r.relevancy = {c1} AND r.id < {c2}", f"r.relevancy < {c1}"]
        if self.sort == "-duration":
            d, i = decode_cursor(cursor, 2)
            return [f"(COALESCE(r.duration, -1), r.id) < ({float(d)!r}, {int(i)})"], []
        (last,) = decode_cursor(cursor, 1)
        return [f"r.id > {int(last)}" if self.sort == "id" else f"r.id < {int(last)}"], []

    def cursor_of(self, row: Mapping[Any, Any]) -> str:
        """The cursor after ``row`` (a row of :func:`page_sql`, read by column name)."""
        if self.sort == "relevancy":
            return encode_cursor(row["relevancy"], row["id"])
        if self.sort == "-duration":
            return encode_cursor(row["duration"] if row["duration"] is not None else -1, row["id"])
        return encode_cursor(row["id"])


def page_sql(flt: ResultFilter, keyset: Keyset, cursor: str | None, limit: int, sqlite: bool) -> str:
    """One page (``limit + 1`` rows, the extra one says whether there is more) of ``ITEM_COLUMNS``
    in the sort order; bind :meth:`ResultFilter.params`."""
    more, legs = keyset.after(cursor)
    where = [*flt.where(sqlite), *more]
    order = keyset.order
    n = int(limit) + 1
    if legs:
        parts = [
            f"SELECT * FROM (SELECT {PAGE_COLUMNS} FROM test_result r WHERE {' AND '.join([*where, leg])} "
            f"ORDER BY {order} LIMIT {n}) l{i}"
            for i, leg in enumerate(legs)
        ]
        page = f"SELECT * FROM ({' UNION ALL '.join(parts)}) u ORDER BY relevancy DESC, id DESC LIMIT {n}"
    else:
        page = f"SELECT {PAGE_COLUMNS} FROM test_result r WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {n}"
    return (
        f"SELECT {ITEM_COLUMNS} FROM ({page}) p JOIN test_case t ON t.id = p.test_case_id "
        f"JOIN test_env e ON e.id = p.env_id ORDER BY {order.replace('r.', 'p.')}"
    )
