"""The one table of results and transitions (kraken/control/transitions.py)."""

from __future__ import annotations

import itertools

import pytest

from kraken.control.effects import Effects
from kraken.control.transitions import RESULT_ORDER, TRANSITIONS, IllegalTransition, combine, rank, set_state
from kraken.models import Flow, Job, Run
from kraken.models.enums import Result, State

# What must win, written out by hand (not derived from RESULT_ORDER): error > timeout > cancelled > failed > passed
EXPECTED_WINNER = {
    frozenset({Result.PASSED}): Result.PASSED,
    frozenset({Result.FAILED}): Result.FAILED,
    frozenset({Result.ERROR}): Result.ERROR,
    frozenset({Result.CANCELLED}): Result.CANCELLED,
    frozenset({Result.TIMEOUT}): Result.TIMEOUT,
    frozenset({Result.PASSED, Result.FAILED}): Result.FAILED,
    frozenset({Result.PASSED, Result.ERROR}): Result.ERROR,
    frozenset({Result.PASSED, Result.CANCELLED}): Result.CANCELLED,
    frozenset({Result.PASSED, Result.TIMEOUT}): Result.TIMEOUT,
    frozenset({Result.FAILED, Result.ERROR}): Result.ERROR,
    frozenset({Result.FAILED, Result.CANCELLED}): Result.CANCELLED,
    frozenset({Result.FAILED, Result.TIMEOUT}): Result.TIMEOUT,
    frozenset({Result.ERROR, Result.CANCELLED}): Result.ERROR,
    frozenset({Result.ERROR, Result.TIMEOUT}): Result.ERROR,
    frozenset({Result.CANCELLED, Result.TIMEOUT}): Result.TIMEOUT,
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(Result, Result)))
def test_every_pair_of_results_has_one_winner_in_either_order(a: Result, b: Result) -> None:
    winner = EXPECTED_WINNER[frozenset({a, b})]
    assert combine([a, b]) == combine([b, a]) == winner
    assert combine([a, b, Result.PASSED]) == winner  # passing items never change the winner


def test_the_order_covers_every_result_once() -> None:
    assert sorted(RESULT_ORDER, key=rank) == list(RESULT_ORDER) and set(RESULT_ORDER) == set(Result)
    assert combine([]) == Result.PASSED


@pytest.mark.parametrize("kind", [Flow, Run, Job])
@pytest.mark.parametrize(("old", "new"), list(itertools.product(State, State)))
def test_set_state_follows_the_table(kind: type, old: State, new: State) -> None:
    entity = kind(id=7, state=old.value)
    effects = Effects()
    result = Result.PASSED if new == State.COMPLETED else None
    if new in TRANSITIONS[kind][old]:
        set_state(entity, new, effects, result=result)
        assert entity.state == new and entity.result == result
        [(channel, event)] = effects.publish
        assert channel == "events" and event["id"] == 7 and event["state"] == new
    else:
        with pytest.raises(IllegalTransition):
            set_state(entity, new, effects, result=result)
        assert entity.state == old and not effects.publish


def test_times_are_stamped_and_a_reopened_run_loses_its_result() -> None:
    run = Run(id=1, flow_id=1, stage_name="s")
    effects = Effects()
    set_state(run, State.RUNNING, effects)
    started = run.started
    assert started is not None and run.finished is None
    set_state(run, State.COMPLETED, effects, result=Result.FAILED)
    assert run.finished is not None and run.result == Result.FAILED
    set_state(run, State.RUNNING, effects)  # a rerun reopens it
    assert run.result is None and run.finished is None and run.started == started
    job = Job(id=2, run_id=1, name="j")
    set_state(job, State.RUNNING, effects, agent_name="a1")
    assert job.assigned is not None and effects.publish[-1][1]["agent_name"] == "a1"
    with pytest.raises(IllegalTransition):  # completed needs a result
        set_state(job, State.COMPLETED, effects)
