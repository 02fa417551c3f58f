"""A warm pool of sandbox worker processes that evaluate stage code.

Each worker is a fresh interpreter started with ``subprocess`` (fork+exec, i.e. the
'spawn' model: safe from a threaded process running asyncio/uvicorn, and it does not
re-import the server's ``__main__`` like ``multiprocessing``'s spawn does). It runs
``sandbox_worker.py`` with its address space capped (RLIMIT_AS). Requests and replies
are JSON messages over two pipes; the parent waits for a reply with ``loop.add_reader``
on whichever event loop is calling, so one pool serves any loop and any thread.

Runaway code: the worker cancels its own evaluation at the deadline (starlark's
``check_cancelled``) and stays warm; should it not answer within a grace period (a long
builtin call, a crash), the parent kills it (SIGKILL) and starts a replacement. A worker
that ran out of memory answers ``memory`` and exits, or dies; either way it is replaced.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("sandbox_worker.py")
MAX_REPLY = 8 * 1024 * 1024 + 1024
_ENV_PASSED = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "TMPDIR")  # nothing else reaches a worker


def _default_max_workers() -> int:
    return max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class SandboxLimits:
    timeout: float = 2.0  # seconds of wall-clock time per evaluation
    memory_mb: int = 256  # address-space cap of a worker
    pool_size: int = 2  # workers kept warm
    max_workers: int = field(default_factory=_default_max_workers)  # concurrent evaluations; more wait
    grace: float = 1.0  # after the deadline, how long a worker may take to answer before it is killed
    cooperative: bool = True  # worker cancels its own evaluation at the deadline


class SandboxCrash(Exception):
    """The worker died or stopped answering; ``reason`` is ``timeout``, ``memory`` or ``crash``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Worker:
    def __init__(self, memory_mb: int) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER_SCRIPT), str(req_r), str(rep_w), str(memory_mb << 20)],
                pass_fds=(req_r, rep_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={key: os.environ[key] for key in _ENV_PASSED if key in os.environ},
            )
        except BaseException:
            os.close(req_w)
            os.close(rep_r)
            raise
        finally:
            os.close(req_r)
            os.close(rep_w)
        from multiprocessing.connection import Connection  # here: an idle server does not load it

        self._requests = Connection(req_w, readable=False)
        self._replies = Connection(rep_r, writable=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def call(self, request: bytes, wait: float) -> dict[str, Any]:
        """Send one (JSON) request and wait up to ``wait`` seconds for the reply."""
        loop = asyncio.get_running_loop()
        try:
            self._requests.send_bytes(request)
        except OSError:
            raise SandboxCrash("crash", self._exit_detail()) from None
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._replies.fileno()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await asyncio.wait_for(ready, wait)
        except TimeoutError:
            raise SandboxCrash("timeout") from None
        finally:
            loop.remove_reader(fd)
        # uvloop's add_reader makes the fd non-blocking; a reply larger than the pipe buffer
        # must then still be read whole.
        os.set_blocking(fd, True)
        try:
            reply: dict[str, Any] = json.loads(self._replies.recv_bytes(MAX_REPLY))
        except (EOFError, OSError):
            raise self._death() from None
        return reply

    def _death(self) -> SandboxCrash:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return SandboxCrash("crash", "no reply")
        # Rust aborts (SIGABRT) and the kernel kills (SIGKILL) when memory runs out.
        if code in (-6, -9):
            return SandboxCrash("memory", f"exit code {code}")
        return SandboxCrash("crash", f"exit code {code}")

    def _exit_detail(self) -> str:
        code = self.proc.poll()
        return "" if code is None else f"exit code {code}"

    def kill(self) -> None:
        self._close_pipes()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # a SIGKILLed process ends at once
            self.proc.wait(timeout=5.0)

    def close(self, wait: float = 1.0) -> None:
        """Let the worker exit on its own (end of its request stream), kill it if it lingers."""
        self._close_pipes()
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for conn in (self._requests, self._replies):
            if not conn.closed:
                conn.close()


_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Worker]"]


class SandboxPool:
    """Hands out workers; thread-safe and usable from any event loop."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._count = 0  # workers alive: idle + busy
        self._waiters: list[_Waiter] = []
        self._closed = False

    def warm_up(self) -> None:
        """Start workers until ``pool_size`` are idle (they get ready in the background)."""
        while True:
            with self._lock:
                if self._closed or len(self._idle) >= self.limits.pool_size:
                    return
                if self._count >= self.limits.max_workers:
                    return
                self._count += 1
            worker = self._spawn_counted()
            self._put_back(worker)

    async def run(self, code: str, ctx: dict[str, Any]) -> dict[str, Any]:
        """Evaluate in a worker; return its reply or raise ``SandboxCrash``."""
        request = {
            "code": code,
            "ctx": ctx,
            "timeout": self.limits.timeout,
            "cooperative": self.limits.cooperative,
        }
        data = json.dumps(request, default=str).encode()
        worker = await self._acquire()
        healthy = False
        try:
            reply = await worker.call(data, self.limits.timeout + self.limits.grace)
            healthy = reply.get("ok") is True or reply.get("kind") not in ("memory", "internal")
            return reply
        finally:
            self._release(worker, healthy)

    def idle_pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in self._idle]

    async def _acquire(self) -> Worker:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RuntimeError("the stage sandbox was shut down")
            if self._idle:
                return self._idle.pop()
            if self._count < self.limits.max_workers:
                self._count += 1
                spawn = True
            else:
                spawn = False
                waiter: asyncio.Future[Worker] = loop.create_future()
                self._waiters.append((loop, waiter))
        if spawn:
            return self._spawn_counted()
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._put_back(waiter.result())  # handed over just as we were cancelled
            raise

    def _spawn_counted(self) -> Worker:
        """Start a worker whose slot was already counted."""
        try:
            return Worker(self.limits.memory_mb)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise

    def _release(self, worker: Worker, healthy: bool) -> None:
        if healthy:
            self._put_back(worker)
            return
        worker.kill()
        with self._lock:
            self._count -= 1
            if self._closed:
                return
            replace = bool(self._waiters) or len(self._idle) < self.limits.pool_size
            if replace:
                self._count += 1
        if replace:
            self._put_back(self._spawn_counted())

    def _put_back(self, worker: Worker) -> None:
        """Give a free worker to the first waiter, or keep it idle."""
        while True:
            with self._lock:
                if self._closed:
                    self._count -= 1
                    closing = True
                elif self._waiters:
                    loop, waiter = self._waiters.pop(0)
                    closing = False
                else:
                    self._idle.append(worker)
                    return
            if closing:
                worker.close()
                return
            try:
                loop.call_soon_threadsafe(self._deliver, waiter, worker)
                return
            except RuntimeError:  # that waiter's loop is closed: try the next one
                continue

    def _deliver(self, waiter: asyncio.Future[Worker], worker: Worker) -> None:
        if waiter.done():  # cancelled meanwhile
            self._put_back(worker)
        else:
            waiter.set_result(worker)

    def close(self) -> None:
        """Stop idle workers now; busy ones stop when their evaluation ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            waiters, self._waiters = self._waiters, []
        for worker in idle:
            worker.close()
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(_fail_waiter, waiter)


def _fail_waiter(waiter: asyncio.Future[Worker]) -> None:
    if not waiter.done():
        waiter.set_exception(RuntimeError("the stage sandbox was shut down"))


_state_lock = threading.Lock()
_pool: SandboxPool | None = None
_pool_pid = 0
_limits = SandboxLimits()


def get_pool() -> SandboxPool:
    """The process-wide pool, started (and warmed up) on first use."""
    global _pool, _pool_pid
    with _state_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked child must not share its parent's workers
            _pool, _pool_pid = SandboxPool(_limits), os.getpid()
            created = True
        else:
            created = False
        pool = _pool
    if created:
        pool.warm_up()
    return pool


def start_sandbox() -> None:
    """Start the process-wide pool's workers now (e.g. at server start-up) rather than on first use."""
    get_pool()


def configure_sandbox(limits: SandboxLimits) -> None:
    """Set the limits of the process-wide pool; a running pool is replaced."""
    global _limits, _pool
    with _state_lock:
        _limits = limits
        old, _pool = _pool, None
    if old is not None:
        old.close()


async def shutdown_sandbox() -> None:
    """Stop the process-wide pool's workers (a later evaluation starts a new pool)."""
    global _pool
    with _state_lock:
        old, _pool = _pool, None
    if old is not None and _pool_pid == os.getpid():
        await asyncio.get_running_loop().run_in_executor(None, old.close)


def _close_at_exit() -> None:
    with _state_lock:
        pool = _pool
    if pool is not None:
        pool.close()


atexit.register(_close_at_exit)
