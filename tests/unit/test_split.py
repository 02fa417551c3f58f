"""Splitting a suite by timing: the assignment every part computes alike (LPT, then by count)."""

from __future__ import annotations

import random

from kraken.agent.tools.split import assign, pytest_result_name, share
from kraken.agent.tools.split_assign import pytest_share


def test_longest_first_balances_and_every_test_runs_once() -> None:
    durations = {"a": 8.0, "b": 7.0, "c": 6.0, "d": 5.0, "e": 4.0, "f": 3.0, "g": 2.0, "h": 1.0}
    shares = assign(list(durations), durations, 2)
    loads = [sum(durations[n] for n in s) for s in shares]
    assert loads == [18.0, 18.0]
    assert sorted(n for s in shares for n in s) == sorted(durations)


def test_tests_without_history_are_spread_by_count() -> None:
    names = [f"t{i:02}" for i in range(10)]
    shares = assign(names, {}, 3)
    assert [len(s) for s in shares] == [4, 3, 3]
    # with history for some: the new ones go to the parts with fewest new ones, then least time
    shares = assign([*names, "slow"], {"slow": 100.0}, 3)
    assert shares == [["slow", "t02", "t05", "t08"], ["t00", "t03", "t06", "t09"], ["t01", "t04", "t07"]]


def test_deterministic_whatever_the_order_and_parts_cover_the_suite() -> None:
    rng = random.Random(7)
    names = [f"tests.test_{i % 7}::test_{i}" for i in range(500)]
    durations = {n: rng.choice([0.01, 0.02, 0.5, 5.0]) for n in names[:400]}
    shuffled = names[:]
    rng.shuffle(shuffled)
    parts = [share(names, durations, p, 4) for p in range(1, 5)]
    assert parts == [sorted(share(shuffled, durations, p, 4), key=names.index) for p in range(1, 5)]
    assert sorted(n for p in parts for n in p) == sorted(names)
    loads = [sum(durations.get(n, 0.0) for n in p) for p in parts]
    assert max(loads) - min(loads) <= max(durations.values())  # LPT: within one test of each other


def test_pytest_node_ids_map_to_their_junit_names() -> None:
    assert pytest_result_name("tests/test_a.py::test_x") == "tests.test_a::test_x"
    assert pytest_result_name("tests/test_a.py::TestK::test_y[1-a::b]") == "tests.test_a.TestK::test_y[1-a::b]"
    assert pytest_result_name("test_b.py::test_z[x/y.py]") == "test_b::test_z[x/y.py]"


def test_a_pytest_share_balances_by_result_names_and_counts_its_figures() -> None:
    ids = ["tests/test_a.py::test_x", "tests/test_a.py::test_y[1]", "tests/test_b.py::TestK::test_z", "new.py::test_n"]
    known = {"tests.test_a::test_x": 5.0, "tests.test_a::test_y[1]": 3.0, "tests.test_b.TestK::test_z": 1.0}
    first, second = (pytest_share(ids, known, part, 2) for part in (1, 2))
    assert first == {"share": [ids[0]], "tests": 1, "of": 4, "timed": 1, "expected_seconds": 5.0}
    # the test without a history goes to the part with fewer of them (none each), then less time
    assert second == {"share": ids[1:], "tests": 3, "of": 4, "timed": 2, "expected_seconds": 4.0}
    assert pytest_share([], known, 1, 2) == {"share": [], "tests": 0, "of": 0, "timed": 0, "expected_seconds": 0}
