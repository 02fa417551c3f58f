"""check_stage_graph: parents exist and form no cycle."""

from __future__ import annotations

import pytest

from kraken.stage import StageSchemaError, check_stage_graph


def test_a_tree_of_stages_is_fine() -> None:
    check_stage_graph({"Build": None, "Unit Tests": "Build", "Deploy": "Unit Tests", "Lint": "root"})


def test_unknown_parent_names_both_stages() -> None:
    with pytest.raises(StageSchemaError) as info:
        check_stage_graph({"Build": "root", "Tests": "Biuld"})
    err = info.value
    assert err.path == "parent"
    assert "'Tests'" in err.message and "'Biuld'" in err.message


def test_cycle_names_the_stages_involved() -> None:
    with pytest.raises(StageSchemaError) as info:
        check_stage_graph({"A": "C", "B": "A", "C": "B", "Root": None, "D": "Root"})
    err = info.value
    assert err.path == "parent"
    assert err.message.startswith("stages form a cycle: ")
    for name in ("'A'", "'B'", "'C'"):
        assert name in err.message
    assert "'D'" not in err.message and "'Root'" not in err.message


def test_a_stage_cannot_be_its_own_parent() -> None:
    with pytest.raises(StageSchemaError) as info:
        check_stage_graph({"A": "A"})
    assert info.value.message == "stages form a cycle: 'A' -> 'A'"


def test_a_chain_hanging_off_a_cycle_reports_only_the_cycle() -> None:
    with pytest.raises(StageSchemaError) as info:
        check_stage_graph({"Aaa": "B", "B": "C", "C": "B"})  # "Aaa" is visited first
    assert info.value.message == "stages form a cycle: 'B' -> 'C' -> 'B'"
