"""One table of results and transitions for flows, runs and jobs.

- ``RESULT_ORDER``: which result wins when several meet (a run's jobs, a flow's runs):
  ``error`` > ``timeout`` > ``cancelled`` > ``failed`` > ``passed``.  ``combine`` applies it.
- ``TRANSITIONS``: the states each kind of entity may go to from each state (as Prefect's
  ``FROM_STATES``/``TO_STATES``, without a rule engine).  A completed job never changes again
  (a rerun is a new job); a completed run or flow is reopened by a rerun or a manual run.
- ``set_state``: the one place that changes a flow's, run's or job's state: it checks the
  table, stamps the times, sets or clears the result and records the live event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kraken.control.effects import Effects
from kraken.models import Flow, Job, Run
from kraken.models.base import utcnow
from kraken.models.enums import Result, State

# Later wins.
RESULT_ORDER: tuple[Result, ...] = (Result.PASSED, Result.FAILED, Result.CANCELLED, Result.TIMEOUT, Result.ERROR)
_RANK = {result: i for i, result in enumerate(RESULT_ORDER)}


def rank(result: Result | str) -> int:
    """The result's place in ``RESULT_ORDER`` (higher wins)."""
    return _RANK[Result(result)]


def combine(results: Iterable[Result | str]) -> Result:
    """The result that wins among ``results`` (``passed`` when there are none)."""
    return max((Result(r) for r in results), key=rank, default=Result.PASSED)


Entity = Flow | Run | Job

TRANSITIONS: dict[type, dict[State, frozenset[State]]] = {
    Job: {
        State.QUEUED: frozenset({State.RUNNING, State.COMPLETED}),  # assigned; cancelled or timed out unassigned
        # running -> queued: an assignment its agent never accepted is taken back (the watchdog)
        State.RUNNING: frozenset({State.QUEUED, State.COMPLETED}),
        State.COMPLETED: frozenset(),
    },
    Run: {
        State.QUEUED: frozenset({State.RUNNING, State.COMPLETED}),  # a first job assigned; ended before
        State.RUNNING: frozenset({State.COMPLETED}),
        State.COMPLETED: frozenset({State.RUNNING}),  # a job rerun
    },
    Flow: {
        State.QUEUED: frozenset({State.RUNNING, State.COMPLETED}),
        State.RUNNING: frozenset({State.COMPLETED}),
        State.COMPLETED: frozenset({State.RUNNING}),  # a job rerun, a manual run
    },
}

EVENT_KIND: dict[type, tuple[str, str]] = {Flow: ("flow", "branch_id"), Run: ("run", "flow_id"), Job: ("job", "run_id")}


class IllegalTransition(RuntimeError):
    """A state change the table does not allow (a bug in the caller, never user input)."""


def allowed(kind: type, old: State | str, new: State | str) -> bool:
    return State(new) in TRANSITIONS[kind][State(old)]


def set_state(
    entity: Entity,
    state: State,
    effects: Effects,
    result: Result | None = None,
    now: datetime | None = None,
    **event: Any,
) -> None:
    """Move ``entity`` to ``state``: check the table, stamp the time, set the result, record the event.

    - to ``running``: a job's ``assigned``, a flow's or run's ``started`` (first time); from
      ``completed`` (reopened) the result and ``finished`` are cleared;
    - to ``completed``: ``result`` (required) and ``finished``; ``started`` if it never ran.
    ``event`` adds fields to the live event (``agent_name``, ``reason``, ...).
    """
    kind = type(entity)
    old = State(entity.state)
    if not allowed(kind, old, state):
        raise IllegalTransition(f"{kind.__name__} {entity.id}: {old} -> {state} is not allowed")
    if (state == State.COMPLETED) != (result is not None):
        raise IllegalTransition(f"{kind.__name__} {entity.id}: a result goes with completed, and only with it")
    now = now or utcnow()
    entity.state = state
    entity.result = result
    if state == State.RUNNING:
        if isinstance(entity, Job):
            entity.assigned = now
        elif entity.started is None:
            entity.started = now
        entity.finished = None
    else:
        if state == State.COMPLETED:
            entity.finished = now
        if not isinstance(entity, Job) and entity.started is None:
            entity.started = now
    name, parent = EVENT_KIND[kind]
    effects.event(name, id=entity.id, **{parent: getattr(entity, parent)}, state=state, result=result, **event)
