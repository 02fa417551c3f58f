"""Job messages from agents: the registry of their handlers, and applying them exactly once.

Every job message carries a per-job sequence number; the server applies it exactly
once: the handler runs in the same transaction that advances ``Job.last_seq``.
Handlers must not commit; what must happen after the commit (bus messages,
background tasks) goes into ``Effects``.

Adding a message type: define its model in ``kraken.protocol`` (and add it to the
``JobMessage`` union there), then decorate ``async def fn(session, job, msg, effects)`` with
``@handles(TheModel)`` in a module imported by ``_load``; ``quick=True`` when the
handler only runs a few short statements (see ``Database.transaction(quick=...)``).

A message that did not validate (``MalformedJobMessage``) ends its job with ``error``; a
message for a job the agent does not hold is acknowledged and dropped, and the agent is told
to cancel that job.  Either way the agent gets its acknowledgement and stops re-sending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.db import Database
from kraken.core.diskspace import DISK_FULL_REASON, is_disk_full
from kraken.core.transient import retry_dropped
from kraken.models import Job
from kraken.observability.servicelog import add_to_context, log_context
from kraken.protocol import (
    JOB_ENDING_TYPES,
    AnyJobMessage,
    JobMessageBase,
    MalformedJobMessage,
    Result,
    State,
    message_type,
)

log = logging.getLogger(__name__)

M = TypeVar("M", bound=JobMessageBase)
Handler = Callable[[AsyncSession, Job, Any, Effects], Awaitable[None]]

_HANDLERS: dict[str, Handler] = {}
_QUICK: set[str] = set()
_loaded = False


def handles(
    model: type[M], *, quick: bool = False
) -> Callable[[Callable[[AsyncSession, Job, M, Effects], Awaitable[None]]], Handler]:
    def deco(fn: Callable[[AsyncSession, Job, M, Effects], Awaitable[None]]) -> Handler:
        _HANDLERS[message_type(model)] = fn
        if quick:
            _QUICK.add(message_type(model))
        return fn

    return deco


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        # Importing a module registers its handlers (``@handles``); imported here because they
        # import this module. A new module of handlers is added to this import.
        import kraken.control.job_message_handlers
        import kraken.results.ingest  # noqa: F401


def handler_for(msg_type: str) -> Handler | None:
    _load()
    return _HANDLERS.get(msg_type)


def all_quick(msg_types: Iterable[str]) -> bool:
    """True when every message type's handler is registered as quick."""
    _load()
    return all(t in _QUICK for t in msg_types)


IncomingMessage = AnyJobMessage | MalformedJobMessage


@dataclass
class Applied:
    seq: int  # the highest sequence number to acknowledge
    held: bool  # False: the job does not exist or is not this agent's
    ended_by_error: str | None = None  # a malformed or unusable message ended the job: why


async def apply_job_messages(
    db: Database,
    agent_id: int,
    agent_name: str,
    job_id: int,
    msgs: Sequence[IncomingMessage],
    effects: Effects,
    not_held: Callable[[], None] | None = None,
) -> Applied:
    """Apply one job's messages (in sequence order) exactly once, in one transaction.

    ``not_held`` is called when the job is not this agent's, while its row is still locked: a
    ``cancel`` it sends to the agent then goes out before any new assignment of the job can be
    committed (to this same agent, whose next ``assign`` of the job must come after the ``cancel``)."""
    with log_context(job_id=job_id):  # every line logged while handling them names the job
        return await _apply_job_messages(db, agent_id, agent_name, job_id, msgs, effects, not_held)


async def _apply_job_messages(
    db: Database,
    agent_id: int,
    agent_name: str,
    job_id: int,
    msgs: Sequence[IncomingMessage],
    effects: Effects,
    not_held: Callable[[], None] | None,
) -> Applied:
    top = max((m.seq or 0) for m in msgs)
    malformed = any(isinstance(m, MalformedJobMessage) for m in msgs)
    quick = not malformed and all_quick(str(m.type) for m in msgs)
    ending = malformed or any(m.type in JOB_ENDING_TYPES for m in msgs)
    # a batch that ends its job with only the usual messages locks no flow (its run is settled after
    # the commit); others, rarer, may change the flow (a git step's commit): flow, run and job locked
    shared = ending and not malformed and all(m.type in ENDS_WITHOUT_FLOW_LOCK for m in msgs)
    try:
        async with db.transaction(quick=quick) as session:
            flow_id: int | None = None  # known when the flow is locked too (stored service records get it anyway)
            try:
                if shared:
                    job = await orchestration.lock_job_shared(session, job_id)
                elif ending:
                    flow, _, job = await orchestration.lock_job(session, job_id)
                    flow_id = flow.id
                else:
                    job = await orchestration.lock_row(session, Job, job_id)
            except sa.exc.NoResultFound:
                job = None
            if job is None or job.agent_id != agent_id:
                if not_held is not None:
                    not_held()
                return Applied(top, held=False)  # acknowledged, nothing applied
            add_to_context(run_id=job.run_id, flow_id=flow_id)
            if _output_has_no_room(db, msgs):
                raise _Unusable(DISK_FULL_REASON)
            # one UPDATE of the job row for the whole batch instead of one per message (orchestration
            # flushes itself before it reads what it changed)
            with session.no_autoflush:
                error = await _apply_each(session, job, agent_name, msgs, effects)
    except Exception as exc:
        if not isinstance(exc, _Unusable):
            if not is_disk_full(exc):
                raise
            # the volume is full (the database layer released its space reserve): the job cannot
            # go on writing its output; end it while there is room, so that it does not stay running
            exc = _Unusable(DISK_FULL_REASON)
        # rolled back: nothing of these messages is kept, the job ends (their numbers are used up)
        effects.publish.clear()
        effects.tasks.clear()
        effects.freed_agents.clear()
        effects.settle_runs.clear()
        effects.wake_scheduler = False
        log.warning("agent %s: job %s: %s", agent_name, job_id, exc.reason)
        async with db.transaction(quick=True) as session:
            _, _, job = await orchestration.lock_job(session, job_id)
            job.last_seq = max(job.last_seq, top)
            await orchestration.complete_job(session, job_id, Result.ERROR, effects, exc.reason)
        return Applied(top, held=True, ended_by_error=exc.reason)
    if effects.settle_runs:  # committed: the job's run finishes now if that was its last open job
        run_ids = sorted(effects.settle_runs)
        effects.settle_runs.clear()
        await retry_dropped(lambda: orchestration.settle_runs(db, run_ids, effects), f"job {job_id}: settle its run")
    return Applied(top, held=True, ended_by_error=error)


FULL_GRACE = 5.0  # seconds a full volume is given before the output of running jobs ends them


def _output_has_no_room(db: Database, msgs: Sequence[IncomingMessage]) -> bool:
    """Whether these messages are only more output while the volume has been full for a while
    (whichever write found it full: a heartbeat, another job).  The job then ends with the reason
    in the room the released reserve gives, instead of writing on into that room until it hits
    the wall itself.  Steps that end meanwhile still say why (their messages are not only output)."""
    since = db.disk.full_since
    if since is None or time.time() - since < FULL_GRACE:
        return False
    return all(m.type == "log" for m in msgs)


# Message types whose handlers lock nothing above their job (``orchestration.lock_job_shared``).
ENDS_WITHOUT_FLOW_LOCK = frozenset({"job_accepted", "step_started", "step_done", "log", "job_done"})


class _Unusable(Exception):
    """A valid message whose content the handler could not use (a bug or a hostile agent)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# What a handler raises on content it cannot use; database and connection errors are not among
# them (they drop the connection, and the agent re-sends after reconnecting).
CONTENT_ERRORS = (TypeError, ValueError, OverflowError, KeyError, IndexError, AttributeError)


async def _apply_each(
    session: AsyncSession, job: Job, agent_name: str, msgs: Sequence[IncomingMessage], effects: Effects
) -> str | None:
    ended_by: str | None = None
    for msg in msgs:
        if msg.seq is not None:
            if msg.seq <= job.last_seq:
                continue  # applied before (re-sent after a reconnect)
            job.last_seq = msg.seq
        if isinstance(msg, MalformedJobMessage):
            reason = f"the agent sent a malformed {msg.type or 'job'} message: {msg.error}"
            log.warning("agent %s: job %s: seq %s: %s", agent_name, job.id, msg.seq, reason)
            assert job.id is not None
            if await orchestration.complete_job(session, job.id, Result.ERROR, effects, reason):
                ended_by = reason
            continue
        if job.state == State.COMPLETED and msg.type != "log":
            continue  # cancelled or declared lost: only late output is still kept
        handler = handler_for(msg.type)
        assert handler is not None, f"no handler for {msg.type}"  # test_every_job_message_type_has_a_handler
        try:
            await handler(session, job, msg, effects)
        except CONTENT_ERRORS as exc:
            raise _Unusable(f"the server could not apply the agent's {msg.type} message: {exc!r:.300}") from exc
    return ended_by
