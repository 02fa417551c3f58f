"""LXD executor: one ephemeral system container per job, every step through LXD's exec.

* The container is created from the image alias ``env.system`` on the local LXD
  server (unix socket: ``$LXD_DIR/unix.socket``, the snap's or
  ``/var/lib/lxd/unix.socket``), with limits (``limits.cpu`` +
  ``limits.cpu.allowance``, ``limits.memory``, ``limits.processes``; network
  False masks every nic of the profiles with a ``none`` device; a job that wants network on
  profiles without a nic gets one on LXD's managed bridge, or a clear error) and the labels as
  ``user.*`` keys (``user.kraken.agent``, ``user.kraken.job``), by which
  ``remove_orphans`` finds what an earlier run left.  ``stop()`` force-stops
  and deletes it.
* Profiles: ``KRAKEN_LXD_PROFILES`` (comma-separated, default ``default``).
* Management calls go through pylxd (synchronous) in worker threads
  (``asyncio.to_thread``).  Commands don't use pylxd's ``execute``, which polls
  the operation every 0.5 s and keeps all output in memory: they use LXD's exec
  websockets directly (the ``websockets`` package over the unix socket), so lines
  reach ``on_line`` while the command runs, without a thread per command.
* Working directory, command wrapper and process-tree kill: as for Docker (see
  ``_container``): ``/kraken/job`` inside the container.  Files: LXD's file API
  (read streamed in 1 MiB chunks); ``copy_in`` streams a tar into ``tar -x``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import posixpath
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import pylxd
from pylxd.exceptions import ClientConnectionFailed, LXDAPIException, NotFound
from websockets.asyncio.client import ClientConnection, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from kraken.agent.executors._container import (
    CONTAINER_WORKDIR,
    KILL_GRACE_SECONDS,
    LineSplitter,
    Utf8Tail,
    container_name,
    exec_environment,
    is_orphan,
    job_labels,
    kill_command,
    new_marker,
    parse_memory,
    resolve,
    tar_stream,
    wrap_command,
)
from kraken.agent.executors.base import (
    ExecResult,
    Executor,
    ExecutorCapability,
    ExecutorError,
    JobEnvironment,
    LineCallback,
)

PROBE_TIMEOUT = 2.0
ChunkCallback = Callable[[bytes], Awaitable[None]]


class _NotAttached(Exception):
    """LXD refused an exec websocket before the command started (it never ran)."""


def socket_path() -> str:
    """The local LXD server's unix socket (the same search as pylxd's)."""
    if "LXD_DIR" in os.environ:
        return os.path.join(os.environ["LXD_DIR"], "unix.socket")
    snap = "/var/snap/lxd/common/lxd/unix.socket"
    return snap if os.path.exists(snap) else "/var/lib/lxd/unix.socket"


def _lxd_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def instance_config(env: JobEnvironment) -> dict[str, str]:
    """LXD instance config keys for the job's labels and limits."""
    config = {f"user.{k}": v for k, v in job_labels(env).items()}
    limits = env.limits
    if limits.get("cpus") is not None:
        cpus = float(limits["cpus"])
        config["limits.cpu"] = str(max(1, math.ceil(cpus)))
        config["limits.cpu.allowance"] = f"{max(1, round(cpus * 100))}ms/100ms"
    if limits.get("memory") is not None:
        config["limits.memory"] = str(parse_memory(limits["memory"]))
    if limits.get("pids") is not None:
        config["limits.processes"] = str(int(limits["pids"]))
    return config


PROFILES_ENV = "KRAKEN_LXD_PROFILES"


def lxd_profiles() -> list[str]:
    """The LXD profiles every job container gets (``KRAKEN_LXD_PROFILES``, default ``default``)."""
    return [p.strip() for p in os.environ.get(PROFILES_ENV, "default").split(",") if p.strip()] or ["default"]


def network_devices(
    want_network: bool,
    profile_devices: Mapping[str, Mapping[str, str]],
    bridges: Sequence[str],
    profiles: Sequence[str],
) -> dict[str, dict[str, str]]:
    """The instance's own devices for its network: without network every nic of the profiles is
    masked (only ``lo`` is left); with network and no nic in the profiles (an LXD initialised
    without a network) an ``eth0`` on the first managed bridge, or an ExecutorError saying what to do."""
    nics = [name for name, dev in profile_devices.items() if dev.get("type") == "nic"]
    if not want_network:
        return {name: {"type": "none"} for name in nics}
    if nics:
        return {}
    if bridges:
        return {"eth0": {"type": "nic", "network": bridges[0], "name": "eth0"}}
    raise ExecutorError(
        f"the job wants network, but the LXD profile(s) {', '.join(profiles)} have no nic device and LXD has "
        "no managed bridge network: create one (`lxc network create lxdbr0`) or add a nic to the profile; "
        "or set the stage's limits to network: false"
    )


class LxdExecutor(Executor):
    name = "lxd"
    # Creating a container unpacks the image (dir pool): big images take a while.
    create_timeout: ClassVar[float] = 600.0

    def __init__(self, env: JobEnvironment) -> None:
        super().__init__(env)
        self.container_name = container_name(env)
        self._socket = socket_path()
        self._client: Any = None
        self._created = False
        self._running: set[str] = set()
        self._cancelled = False

    @property
    def workdir(self) -> str:
        return CONTAINER_WORKDIR

    # ------------------------------------------------------------ pylxd plumbing

    def _connect(self) -> Any:
        try:
            return pylxd.Client(endpoint=self._socket)
        except (ClientConnectionFailed, LXDAPIException, OSError) as exc:
            raise ExecutorError(f"cannot connect to LXD at {self._socket}: {_lxd_message(exc)}") from exc

    def _api(self) -> Any:
        """The REST node of this job's instance."""
        if self._client is None or not self._created:
            raise ExecutorError("the LXD container is not running (not started or already stopped)")
        return self._client.api.instances[self.container_name]

    def _wait(self, operation: str) -> Any:
        return self._client.operations.wait_for_operation(operation)

    def _network_devices(self, client: Any, profiles: Sequence[str]) -> dict[str, dict[str, str]]:
        devices: dict[str, Mapping[str, str]] = {}
        for name in profiles:
            try:
                devices.update(client.profiles.get(name).devices or {})
            except NotFound:
                raise ExecutorError(
                    f"LXD profile {name!r} not found ({PROFILES_ENV}; see `lxc profile list`)"
                ) from None
            except LXDAPIException as exc:
                raise ExecutorError(f"cannot read LXD profile {name!r}: {_lxd_message(exc)}") from exc
        want = self.env.limits.get("network") is not False
        bridges: list[str] = []
        if want and not any(d.get("type") == "nic" for d in devices.values()):
            try:
                bridges = [n.name for n in client.networks.all() if n.managed and n.type == "bridge"]
            except LXDAPIException as exc:
                raise ExecutorError(f"cannot list LXD networks: {_lxd_message(exc)}") from exc
        return network_devices(want, devices, bridges, profiles)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._created:
            raise ExecutorError("lxd executor already started")
        try:
            await asyncio.wait_for(asyncio.to_thread(self._start_sync), self.create_timeout)
        except TimeoutError:
            await self.stop()
            raise ExecutorError(
                f"LXD did not create a container from {self.env.system!r} in {self.create_timeout:g}s"
            ) from None
        except BaseException:
            await asyncio.shield(self.stop())
            raise

    def _start_sync(self) -> None:
        self._client = client = self._connect()
        alias = self.env.system
        try:
            client.images.get_by_alias(alias)
        except NotFound:
            raise ExecutorError(
                f"LXD image alias {alias!r} not found on the LXD server (see `lxc image list`)"
            ) from None
        except LXDAPIException as exc:
            raise ExecutorError(f"cannot look up LXD image alias {alias!r}: {_lxd_message(exc)}") from exc
        profiles = lxd_profiles()
        config: dict[str, Any] = {
            "name": self.container_name,
            "type": "container",
            "ephemeral": True,
            "source": {"type": "image", "alias": alias},
            "profiles": profiles,
            "config": instance_config(self.env),
            "devices": self._network_devices(client, profiles),
        }
        try:
            response = client.api.instances.post(json=config)
            self._created = True
            self._wait(response.json()["operation"])
            response = self._api().state.put(json={"action": "start", "timeout": 30, "force": True})
            self._wait(response.json()["operation"])
        except LXDAPIException as exc:
            raise ExecutorError(f"cannot start an LXD container from image {alias!r}: {_lxd_message(exc)}") from exc
        # The working directory (file API, no process needed).
        for directory in ("/kraken", CONTAINER_WORKDIR):
            self._mkdir_sync(directory)

    def _mkdir_sync(self, path: str) -> None:
        try:
            self._api().files.post(
                params={"path": path},
                data=b"",
                headers={"X-LXD-type": "directory", "X-LXD-mode": "0755", "X-LXD-uid": "0", "X-LXD-gid": "0"},
            )
        except LXDAPIException as exc:
            if "exists" not in _lxd_message(exc).lower():
                raise ExecutorError(f"cannot create {path} in {self.container_name}: {exc}") from exc

    async def stop(self) -> None:
        self._cancelled = True
        client, created = self._client, self._created
        self._created = False  # the client stays: a running exec may still ask for its exit code
        if client is not None and created:
            await asyncio.shield(asyncio.to_thread(self._delete_sync, client, self.container_name))

    @staticmethod
    def _delete_sync(client: Any, name: str) -> None:
        node = client.api.instances[name]
        try:
            response = node.state.put(json={"action": "stop", "timeout": 0, "force": True})
            client.operations.wait_for_operation(response.json()["operation"])
        except NotFound:
            return  # gone already (an ephemeral container is deleted when it stops)
        except LXDAPIException as exc:
            if "not running" not in _lxd_message(exc).lower():
                raise ExecutorError(f"cannot stop LXD container {name}: {_lxd_message(exc)}") from exc
        try:
            response = node.delete()
            client.operations.wait_for_operation(response.json()["operation"])
        except NotFound:
            pass
        except LXDAPIException as exc:
            raise ExecutorError(f"cannot delete LXD container {name}: {_lxd_message(exc)}") from exc

    # ------------------------------------------------------------ exec over websockets

    async def _ws(self, operation_id: str, secret: str) -> ClientConnection:
        uri = f"ws://lxd/1.0/operations/{operation_id}/websocket?secret={quote(secret)}"
        return await unix_connect(
            self._socket, uri, compression=None, max_size=None, ping_interval=None, open_timeout=30
        )

    async def _run(
        self,
        argv: Sequence[str],
        environment: Mapping[str, str],
        on_stdout: ChunkCallback | None,
        on_stderr: ChunkCallback | None = None,
        stdin: AsyncIterator[bytes] | None = None,
    ) -> int | None:
        """Run argv in the container, passing output chunks on as they come; return the exit code.

        LXD starts the command only once all four websockets are connected; when it refuses one
        (the operation gave up waiting for them on a loaded host: HTTP 500) the command never ran,
        so the exec is made again (three tries)."""
        for attempt in range(1, 4):
            try:
                return await self._run_once(argv, environment, on_stdout, on_stderr, stdin)
            except _NotAttached as exc:
                if attempt == 3:
                    raise ExecutorError(f"LXD exec stream in {self.container_name} failed: {exc.__cause__}") from exc
        raise AssertionError("unreachable")

    async def _run_once(
        self,
        argv: Sequence[str],
        environment: Mapping[str, str],
        on_stdout: ChunkCallback | None,
        on_stderr: ChunkCallback | None,
        stdin: AsyncIterator[bytes] | None,
    ) -> int | None:
        body = {
            "command": list(argv),
            "environment": dict(environment),
            "wait-for-websocket": True,
            "interactive": False,
            "record-output": False,
        }
        try:
            response = await asyncio.to_thread(self._api().exec.post, json=body)
        except LXDAPIException as exc:
            raise ExecutorError(f"LXD exec in {self.container_name} failed: {_lxd_message(exc)}") from exc
        op = response.json()
        operation = op["operation"]
        operation_id = operation.rstrip("/").rsplit("/", 1)[-1]
        fds = op["metadata"]["metadata"]["fds"]
        names = ("0", "1", "2", "control")
        socks: list[ClientConnection] = []
        try:
            # LXD starts the command once every websocket is connected.
            attached = await asyncio.gather(*(self._ws(operation_id, fds[n]) for n in names), return_exceptions=True)
            socks = [ws for ws in attached if isinstance(ws, ClientConnection)]
            refused = [e for e in attached if isinstance(e, InvalidStatus)]
            if refused:
                raise _NotAttached() from refused[0]
            for e in attached:
                if isinstance(e, BaseException):
                    raise e
            ws_in, ws_out, ws_err, _control = socks

            async def pump(ws: ClientConnection, callback: ChunkCallback | None) -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for message in ws:
                        data = message.encode() if isinstance(message, str) else message
                        if data and callback is not None:
                            await callback(data)

            async def feed() -> None:
                with contextlib.suppress(ConnectionClosed):
                    if stdin is not None:
                        async for chunk in stdin:
                            await ws_in.send(chunk)
                await ws_in.close()  # EOF on the command's stdin

            await asyncio.gather(pump(ws_out, on_stdout), pump(ws_err, on_stderr), feed())
        except (WebSocketException, OSError) as exc:
            raise ExecutorError(f"LXD exec stream in {self.container_name} failed: {exc}") from exc
        finally:
            for ws in socks:
                with contextlib.suppress(Exception):
                    await ws.close()
        return await asyncio.to_thread(self._exit_code_sync, operation)

    def _run_detached_sync(self, argv: Sequence[str]) -> int | None:
        """Run a short command without websockets (no output) and wait for it."""
        response = self._api().exec.post(
            json={
                "command": list(argv),
                "environment": {},
                "wait-for-websocket": False,
                "interactive": False,
                "record-output": False,
            }
        )
        return self._exit_code_sync(response.json()["operation"])

    def _exit_code_sync(self, operation: str) -> int | None:
        """Wait for an exec operation; its exit code (LXD marks 126/127 as failures: not an error here)."""
        operation_id = operation.rstrip("/").rsplit("/", 1)[-1]
        try:
            body = self._client.api.operations[operation_id].wait.get().json()
        except LXDAPIException as exc:
            raise ExecutorError(f"LXD exec in {self.container_name} failed: {_lxd_message(exc)}") from exc
        meta = body.get("metadata") or {}
        code = (meta.get("metadata") or {}).get("return")
        if code is None and meta.get("status") == "Failure":
            raise ExecutorError(f"LXD exec in {self.container_name} failed: {meta.get('err') or body}")
        return int(code) if code is not None else None

    async def exec(
        self,
        command: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_line: LineCallback | None = None,
    ) -> ExecResult:
        if self._cancelled:
            return ExecResult(exit_code=None, cancelled=True)
        marker = new_marker()
        argv = wrap_command(command, resolve(self.workdir, cwd))
        splitter = LineSplitter(on_line)

        async def run() -> int | None:
            code = await self._run(argv, exec_environment(self.env, env, marker), splitter.feed, splitter.feed)
            await splitter.close()
            return code

        self._running.add(marker)
        task = asyncio.ensure_future(run())
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                timed_out = True
                for _ in range(3):
                    await self._kill([marker])
                    done, _pending = await asyncio.wait({task}, timeout=KILL_GRACE_SECONDS)
                    if done:
                        break
                else:
                    task.cancel()
        except BaseException:
            task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._kill([marker]))
            raise
        finally:
            self._running.discard(marker)
        if task.cancelled():
            return ExecResult(exit_code=None, timed_out=timed_out, cancelled=self._cancelled)
        if task.exception() is not None and self._cancelled:
            # stop() removed the container under the running command
            return ExecResult(exit_code=None, timed_out=timed_out, cancelled=True)
        return ExecResult(exit_code=task.result(), timed_out=timed_out, cancelled=self._cancelled)

    async def _kill(self, markers: Iterable[str]) -> None:
        markers = list(markers)
        if not markers or not self._created:
            return
        with contextlib.suppress(ExecutorError, LXDAPIException, OSError):
            await asyncio.to_thread(self._run_detached_sync, kill_command(markers))

    async def cancel(self) -> None:
        self._cancelled = True
        await self._kill(self._running)

    # ------------------------------------------------------------ files

    async def read_file(self, path: str) -> AsyncIterator[bytes]:
        target = resolve(self.workdir, path)
        node = self._api().files

        def open_stream() -> Any:
            return node.get(params={"path": target}, stream=True, is_api=False)

        try:
            response = await asyncio.to_thread(open_stream)
        except NotFound:
            raise FileNotFoundError(f"{target} (in container {self.container_name})") from None
        except LXDAPIException as exc:
            raise ExecutorError(
                f"cannot read {target} in container {self.container_name}: {_lxd_message(exc)}"
            ) from exc
        try:
            if response.headers.get("X-LXD-type") == "directory":
                raise IsADirectoryError(f"{target} (in container {self.container_name})")
            chunks = response.iter_content(1 << 20)
            while (chunk := await asyncio.to_thread(next, chunks, b"")) != b"":
                yield chunk
        finally:
            response.close()

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = resolve(self.workdir, path)
        headers = {
            "X-LXD-type": "file",
            "X-LXD-mode": f"{mode:04o}",
            "X-LXD-uid": "0",
            "X-LXD-gid": "0",
            "X-LXD-write": "overwrite",
        }
        node = self._api().files

        def put() -> None:
            node.post(params={"path": target}, data=data, headers=headers)

        try:
            try:
                await asyncio.to_thread(put)
            except (NotFound, LXDAPIException):
                # Most likely a missing parent directory: create it, then try once more.
                await self._mkdirs(posixpath.dirname(target))
                await asyncio.to_thread(put)
        except LXDAPIException as exc:
            raise ExecutorError(
                f"cannot write {target} in container {self.container_name}: {_lxd_message(exc)}"
            ) from exc

    async def _mkdirs(self, path: str) -> None:
        code = await asyncio.to_thread(self._run_detached_sync, ["mkdir", "-p", path])
        if code != 0:
            raise ExecutorError(f"cannot create directory {path} in container {self.container_name}")

    async def copy_in(self, host_path: str, path: str) -> str:
        """Copy a file or directory tree of the agent's host into the container (streamed tar).

        Returns the path inside the container; relative paths are relative to the workdir.
        """
        target = resolve(self.workdir, path)
        err = Utf8Tail()

        async def keep(data: bytes) -> None:
            err.feed(data)

        code = await self._run(
            ["tar", "-x", "-f", "-", "-C", "/"],
            {},
            keep,
            keep,
            stdin=tar_stream(host_path, target.lstrip("/")),
        )
        if code != 0:
            raise ExecutorError(
                f"cannot copy {host_path} to {target} in container {self.container_name}: "
                f"{err.text.strip() or f'tar exited with code {code}'}"
            )
        return target

    # ------------------------------------------------------------ engine-level

    @classmethod
    async def probe(cls) -> ExecutorCapability | None:
        sock = socket_path()
        if not await asyncio.to_thread(os.path.exists, sock):
            return None

        def connect() -> Any:
            return pylxd.Client(endpoint=sock, timeout=PROBE_TIMEOUT)

        try:
            client = await asyncio.wait_for(asyncio.to_thread(connect), PROBE_TIMEOUT + 0.5)
        except Exception:
            return None
        env = client.host_info.get("environment", {})
        return ExecutorCapability(
            name="lxd",
            version=str(env.get("server_version", "?")),
            details={
                "driver": env.get("driver"),
                "storage": env.get("storage"),
                "kernel": env.get("kernel_version"),
            },
        )

    @classmethod
    async def remove_orphans(cls, agent_name: str, home: str | None = None) -> int:
        def remove() -> int:
            sock = socket_path()
            try:
                client = pylxd.Client(endpoint=sock)
            except (ClientConnectionFailed, LXDAPIException, OSError) as exc:
                raise ExecutorError(f"cannot connect to LXD at {sock}: {_lxd_message(exc)}") from exc
            response = client.api.instances.get(params={"recursion": 1})
            removed = 0
            for inst in response.json()["metadata"]:
                config = inst.get("config") or {}
                labels = {k[5:]: v for k, v in config.items() if k.startswith("user.")}
                if not is_orphan(labels, agent_name, home):
                    continue
                cls._delete_sync(client, inst["name"])
                removed += 1
            return removed

        return await asyncio.to_thread(remove)
