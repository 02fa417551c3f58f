"""Which tests a part of a job split by timing runs (``"parallel": N``, ``docs/stages.md``).

Every part computes the same deterministic assignment from the same inputs (the list of tests,
the durations the branch's history gives for them) and keeps its own share:

- tests with a history, longest first (ties by name), each to the part with the least expected
  time so far (ties: the lowest part): longest-processing-time first;
- then tests without a history, by name, each to the part with the fewest of them so far (ties:
  the least expected time, then the lowest part): spread by count.

Standard library only, and Python 3.7+ (annotations are never evaluated): the pytest tool copies
this file as it is next to its plugin (``kraken_share``) into the job's environment, where the
suite's own interpreter imports it and the part picks its share inside the one pytest process
that runs it.
"""

from __future__ import annotations

import re


def assign(names: list[str], durations: dict[str, float], parts: int) -> list[list[str]]:
    """Every test's part (a list of names per part), deterministic for the given inputs."""
    unique = sorted(set(names))
    load = [0.0] * parts
    shares: list[list[str]] = [[] for _ in range(parts)]
    known = sorted((n for n in unique if n in durations), key=lambda n: (-durations[n], n))
    for name in known:
        i = min(range(parts), key=lambda p: (load[p], p))
        shares[i].append(name)
        load[i] += max(0.0, durations[name])
    counts = [0] * parts
    for name in (n for n in unique if n not in durations):
        i = min(range(parts), key=lambda p: (counts[p], load[p], p))
        shares[i].append(name)
        counts[i] += 1
    return shares


def share(names: list[str], durations: dict[str, float], part: int, parts: int) -> list[str]:
    """The tests of part ``part`` (1-based) of ``parts``, in the order they were listed."""
    mine = set(assign(names, durations, parts)[part - 1])
    return [n for n in dict.fromkeys(names) if n in mine]


def pytest_result_name(nodeid: str) -> str:
    """The name pytest's JUnit report gives a node id (``tests/test_a.py::TestX::test_y[1]`` ->
    ``tests.test_a.TestX::test_y[1]``), the name its results and durations are stored under."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]) + "::" + names[-1] if len(names) > 1 else names[0]


def pytest_share(nodeids: list[str], known: dict[str, float], part: int, parts: int) -> dict[str, object]:
    """A pytest part's share of the collected ``nodeids``, ``known`` being durations by result name:
    ``{"share": node ids, "tests", "of", "timed", "expected_seconds"}``."""
    durations: dict[str, float] = {}
    for nodeid in nodeids:
        name = pytest_result_name(nodeid)
        if name in known:
            durations[nodeid] = float(known[name])
    mine = share(nodeids, durations, part, parts)
    return {
        "share": mine,
        "tests": len(mine),
        "of": len(dict.fromkeys(nodeids)),
        "timed": sum(1 for n in mine if n in durations),
        "expected_seconds": round(sum(durations.get(n, 0.0) for n in mine), 3),
    }
