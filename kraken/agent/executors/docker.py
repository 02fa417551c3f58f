"""Docker executor: one container per job, every step through ``docker exec``.

* The container is created from ``env.system`` (the image; pulled when missing)
  with a tiny shell loop as PID 1, so any image with ``/bin/sh`` works, and is
  removed (force) by ``stop()``.  Limits: cpus -> NanoCpus, memory -> Memory and
  MemorySwap (no swap), pids -> PidsLimit, network False -> NetworkMode none.
  Labels ``kraken.agent`` / ``kraken.job`` (+ the job's labels) let
  ``remove_orphans`` find containers an earlier run of the agent left behind.
* The working directory is ``/kraken/job`` *inside* the container (not a bind
  mount: nothing on the host to chown or clean up, and the same on a remote
  engine); files move with the archive API (in) and ``cat`` (out, streamed).
* Steps run under the wrapper of ``_container``: merged live output, exit code
  from the exec, and on timeout/cancel the whole process tree is stopped and
  killed by a second exec (see ``_container`` for how the tree is found).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tarfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError
from aiodocker.execs import Exec
from aiodocker.stream import Message, Stream

from kraken.agent.executors._container import (
    CONTAINER_WORKDIR,
    KEEPALIVE_SCRIPT,
    KILL_GRACE_SECONDS,
    MARKER_VAR,
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


def _docker_message(exc: BaseException) -> str:
    if isinstance(exc, DockerError):
        msg = exc.message
        if isinstance(msg, dict):
            msg = msg.get("message", str(msg))
        return str(msg).strip()
    return str(exc) or type(exc).__name__


def _client() -> aiodocker.Docker:
    try:
        return aiodocker.Docker()
    except Exception as exc:  # no socket found, bad DOCKER_HOST...
        raise ExecutorError(f"cannot connect to the Docker engine: {exc}") from exc


def host_config(limits: Mapping[str, Any]) -> dict[str, Any]:
    """Docker HostConfig for the job's limits."""
    hc: dict[str, Any] = {}
    if limits.get("cpus") is not None:
        hc["NanoCpus"] = int(float(limits["cpus"]) * 1e9)
    if limits.get("memory") is not None:
        mem = parse_memory(limits["memory"])
        hc["Memory"] = mem
        hc["MemorySwap"] = mem  # the same: no swap on top
    if limits.get("pids") is not None:
        hc["PidsLimit"] = int(limits["pids"])
    if limits.get("network") is False:
        hc["NetworkMode"] = "none"
    return hc


class DockerExecutor(Executor):
    name = "docker"
    # How long a missing image may take to pull (big images on slow links take minutes).
    pull_timeout: ClassVar[float] = 900.0

    def __init__(self, env: JobEnvironment) -> None:
        super().__init__(env)
        self._docker: aiodocker.Docker | None = None
        self._container: DockerContainer | None = None
        self.container_name = container_name(env)
        self._running: set[str] = set()  # markers of the execs running now
        self._cancelled = False
        self._stopped = False

    @property
    def workdir(self) -> str:
        return CONTAINER_WORKDIR

    @property
    def container_id(self) -> str | None:
        return self._container.id if self._container is not None else None

    # ------------------------------------------------------------ lifecycle

    def _config(self) -> dict[str, Any]:
        hc = host_config(self.env.limits)
        hc["Init"] = False
        return {
            "Image": self.env.system,
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": [KEEPALIVE_SCRIPT],
            "WorkingDir": CONTAINER_WORKDIR,  # created by the engine at start
            "Labels": job_labels(self.env),
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "Tty": False,
            "OpenStdin": False,
            "HostConfig": hc,
        }

    async def start(self) -> None:
        if self._container is not None:
            raise ExecutorError("docker executor already started")
        self._docker = docker = _client()
        image = self.env.system
        config = self._config()
        try:
            try:
                container = await docker.containers.create(config, name=self.container_name)
            except DockerError as exc:
                if exc.status != 404:
                    raise ExecutorError(
                        f"cannot create a container from image {image!r}: {_docker_message(exc)}"
                    ) from exc
                await self._pull(image, exc)
                container = await docker.containers.create(config, name=self.container_name)
            self._container = container
            try:
                await container.start()
            except DockerError as exc:
                raise ExecutorError(f"cannot start a container from image {image!r}: {_docker_message(exc)}") from exc
        except ExecutorError:
            await self.stop()
            raise
        except (TimeoutError, DockerError, OSError) as exc:
            await self.stop()
            raise ExecutorError(f"docker engine error for image {image!r}: {_docker_message(exc)}") from exc
        except BaseException:
            await asyncio.shield(self.stop())
            raise

    async def _pull(self, image: str, not_found: DockerError) -> None:
        assert self._docker is not None
        try:
            await asyncio.wait_for(self._docker.images.pull(image), self.pull_timeout)
        except (TimeoutError, DockerError, OSError) as exc:
            why = _docker_message(exc) if not isinstance(exc, TimeoutError) else "timed out"
            raise ExecutorError(
                f"image {image!r} not found locally ({_docker_message(not_found)}) and pull failed: {why}"
            ) from exc

    async def stop(self) -> None:
        self._cancelled = True
        container, self._container = self._container, None
        docker, self._docker = self._docker, None
        self._stopped = True
        try:
            if container is not None:
                with contextlib.suppress(DockerError):  # 404: already gone
                    await container.delete(force=True, v=True)
        finally:
            if docker is not None:
                await docker.close()

    def _require(self) -> DockerContainer:
        if self._container is None:
            raise ExecutorError("the docker container is not running (not started or already stopped)")
        return self._container

    # ------------------------------------------------------------ exec

    async def _create_exec(
        self, argv: Sequence[str], environment: Mapping[str, str] | None = None, user: str = ""
    ) -> Exec:
        container = self._require()
        try:
            return await container.exec(
                list(argv),
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                environment=environment,
                user=user,
            )
        except DockerError as exc:
            raise ExecutorError(f"docker exec in {self.container_name} failed: {_docker_message(exc)}") from exc

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
        environment = exec_environment(self.env, env, marker)
        ex = await self._create_exec(wrap_command(command, resolve(self.workdir, cwd)), environment)
        splitter = LineSplitter(on_line)

        async def pump() -> None:
            async with self._attach(ex) as stream:
                while (msg := await self._read(stream)) is not None:
                    await splitter.feed(msg.data)
            await splitter.close()

        self._running.add(marker)
        reader = asyncio.ensure_future(pump())
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(reader), timeout)
            except TimeoutError:
                timed_out = True
                await self._kill_until_done([marker], reader)
        except BaseException as exc:
            # on_line failed, the stream broke or our caller was cancelled: leave nothing running.
            reader.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._kill([marker]))
            if isinstance(exc, ExecutorError) and self._cancelled:
                # stop() removed the container under the running command
                return ExecResult(exit_code=None, timed_out=timed_out, cancelled=True)
            raise
        finally:
            self._running.discard(marker)
        if reader.cancelled() and self._cancelled:
            return ExecResult(exit_code=None, timed_out=timed_out, cancelled=True)
        exit_code = await self._exit_code(ex)
        return ExecResult(exit_code=exit_code, timed_out=timed_out, cancelled=self._cancelled)

    def _attach(self, ex: Exec) -> Stream:
        return ex.start(detach=False)

    async def _read(self, stream: Stream) -> Message | None:
        """The next frame of an exec's output; engine and connection errors become ExecutorError."""
        try:
            return await stream.read_out()
        except (DockerError, aiohttp.ClientError, OSError) as exc:
            raise ExecutorError(
                f"docker exec output from {self.container_name} failed: {_docker_message(exc)}"
            ) from exc

    async def _kill_until_done(self, markers: list[str], reader: asyncio.Future[None]) -> None:
        for _ in range(3):
            await self._kill(markers)
            done, _pending = await asyncio.wait({reader}, timeout=KILL_GRACE_SECONDS)
            if done:
                return
        reader.cancel()

    async def _exit_code(self, ex: Exec) -> int | None:
        # The engine records the exit code before it closes the stream; be lenient anyway.
        deadline = time.monotonic() + 5
        while True:
            try:
                info = await ex.inspect()
            except DockerError:
                return None
            if not info.get("Running") or time.monotonic() > deadline:
                code = info.get("ExitCode")
                return int(code) if code is not None else None
            await asyncio.sleep(0.05)

    async def _kill(self, markers: Iterable[str]) -> None:
        """Stop and kill every process of the given execs (a second exec, as root)."""
        markers = list(markers)
        if not markers or self._container is None:
            return
        try:
            ex = await self._create_exec(kill_command(markers), user="0")
            async with ex.start(detach=False) as stream:
                while await stream.read_out() is not None:
                    pass
        except (ExecutorError, DockerError, OSError):
            pass  # the container is gone: so are its processes

    async def cancel(self) -> None:
        self._cancelled = True
        await self._kill(self._running)

    # ------------------------------------------------------------ files

    async def read_file(self, path: str) -> AsyncIterator[bytes]:
        target = resolve(self.workdir, path)
        marker = new_marker()
        ex = await self._create_exec(["cat", target], {MARKER_VAR: marker})
        err = Utf8Tail()
        complete = False
        try:
            async with self._attach(ex) as stream:
                while (msg := await self._read(stream)) is not None:
                    if msg.stream == 1:
                        yield msg.data
                    else:
                        err.feed(msg.data)
            complete = True
        finally:
            if not complete:  # the reader stopped early: don't leave cat blocked in the container
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._kill([marker]))
        code = await self._exit_code(ex)
        if code != 0:
            message = err.text.strip() or f"cat exited with code {code}"
            if "No such file" in message:
                raise FileNotFoundError(f"{target} (in container {self.container_name}): {message}")
            raise ExecutorError(f"cannot read {target} in container {self.container_name}: {message}")

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = resolve(self.workdir, path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(target.lstrip("/"))
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        await self._put_archive(buf.getvalue(), target)

    async def copy_in(self, host_path: str, path: str) -> str:
        """Copy a file or directory tree of the agent's host into the container (streamed tar).

        Returns the path inside the container; relative paths are relative to the workdir.
        """
        target = resolve(self.workdir, path)
        await self._put_archive(tar_stream(host_path, target.lstrip("/")), target)
        return target

    async def _put_archive(self, data: Any, target: str) -> None:
        container = self._require()
        try:
            # Extracted at "/": the engine creates the missing parent directories.
            await container.put_archive("/", data)  # type: ignore[no-untyped-call]
        except DockerError as exc:
            raise ExecutorError(
                f"cannot write {target} in container {self.container_name}: {_docker_message(exc)}"
            ) from exc

    # ------------------------------------------------------------ engine-level

    @classmethod
    async def probe(cls) -> ExecutorCapability | None:
        try:
            docker = aiodocker.Docker()
        except Exception:
            return None
        try:
            version = await asyncio.wait_for(docker.version(), PROBE_TIMEOUT)
        except Exception:
            return None
        finally:
            with contextlib.suppress(Exception):
                await docker.close()
        return ExecutorCapability(
            name="docker",
            version=str(version.get("Version", "?")),
            details={
                "api_version": version.get("ApiVersion"),
                "os": version.get("Os"),
                "arch": version.get("Arch"),
                "kernel": version.get("KernelVersion"),
            },
        )

    @classmethod
    async def remove_orphans(cls, agent_name: str, home: str | None = None) -> int:
        docker = _client()
        removed = 0
        try:
            try:
                containers = await docker.containers.list(
                    all=True, filters=json.dumps({"label": [f"kraken.agent={agent_name}"]})
                )
            except DockerError as exc:
                raise ExecutorError(f"cannot list docker containers: {_docker_message(exc)}") from exc
            for container in containers:
                if not is_orphan(container["Labels"] or {}, agent_name, home):
                    continue
                try:
                    await container.delete(force=True, v=True)
                    removed += 1
                except DockerError as exc:
                    if exc.status != 404:
                        raise ExecutorError(
                            f"cannot remove orphan container {container.id[:12]}: {_docker_message(exc)}"
                        ) from exc
        finally:
            await docker.close()
        return removed
