"""The ``kraken`` command: serve, server, controller, worker, agent, db upgrade, logs copy, client.

Every option can also come from a ``KRAKEN_<OPTION>`` environment variable; an
option on the command line wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kraken.client.commands import app as client_app
from kraken.core.config import Settings
from kraken.core.hardening import not_dumpable
from kraken.core.loop import run_async

if TYPE_CHECKING:
    import uvicorn

    from kraken.agent.local import LocalAgentProcess

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Kraken CI")
db_app = typer.Typer(no_args_is_help=True, help="Database maintenance")
app.add_typer(db_app, name="db")
logs_app = typer.Typer(no_args_is_help=True, help="Job log stores")
app.add_typer(logs_app, name="logs")
app.add_typer(client_app, name="client")  # its HTTP side is imported only when a client command runs

DataDir = Annotated[Path | None, typer.Option(help="state directory [KRAKEN_DATA_DIR, default ./kraken-data]")]
DbUrl = Annotated[str | None, typer.Option(help="database URL, e.g. postgresql+asyncpg://u@h/db [KRAKEN_DATABASE_URL]")]
RedisUrl = Annotated[str | None, typer.Option(help="redis://host:6379/0 [KRAKEN_REDIS_URL]")]
Host = Annotated[str | None, typer.Option(help="listen address [KRAKEN_HOST, default 127.0.0.1]")]
Port = Annotated[int | None, typer.Option(help="listen port [KRAKEN_PORT, default 8080]")]
LogLevel = Annotated[str | None, typer.Option(help="debug, info, warning [KRAKEN_LOG_LEVEL]")]
AutoApprove = Annotated[
    bool | None,
    typer.Option(
        "--auto-approve/--no-auto-approve",
        help="approve enrolling agents without an administrator: trusted networks only [KRAKEN_AUTO_APPROVE]",
    ),
]
MetricsPort = Annotated[
    int | None, typer.Option(help="serve Prometheus metrics on this port, off if unset [KRAKEN_METRICS_PORT]")
]


def settings_from(*, service: str = "kraken", **options: Any) -> Settings:
    """The settings, or the end of the command with what is wrong in each (the setting's name and
    why; never the value given, which may be a secret); logging is set up for ``service`` (the
    role named in JSON log lines)."""
    from pydantic import ValidationError

    given = {k: v for k, v in options.items() if v is not None and v != []}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()]
        typer.echo("kraken: the settings are wrong:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None
    from kraken.observability.servicelog import configure

    configure(service, settings.log_level, settings.log_format)
    return settings


def _run(coro: Any) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        run_async(coro)


def _run_agent(coro: Any) -> None:
    """Agents run on asyncio's own loop (see ``run_async``); a refused token ends with code 2."""
    try:
        with contextlib.suppress(KeyboardInterrupt):
            run_async(coro, use_uvloop=False)
    except PermissionError as exc:
        typer.echo(f"kraken agent: {exc}", err=True)
        raise typer.Exit(2) from exc


async def _serve_http(settings: Settings, role: str, *, local_agent: bool = False, sample: bool = False) -> None:
    import uvicorn

    from kraken.api.app import create_app
    from kraken.runtime import Runtime

    runtime = Runtime(settings, role=role)
    if settings.auto_approve:
        logging.getLogger("kraken").warning(
            "--auto-approve: every agent with the shared token is approved at once (trusted networks only)"
        )
    api = create_app(runtime, controller=role == "serve")
    config = uvicorn.Config(
        api,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
        # JSON lines: uvicorn's own loggers go through the root handler (servicelog) like every other
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        ws_max_size=64 << 20,
        ws_per_message_deflate=False,  # agent traffic is small JSON frames: compression costs more CPU than it saves
        # live streams (server-sent events) never end by themselves: don't wait for them forever
        timeout_graceful_shutdown=3,
    )
    local: LocalAgentProcess | None = None

    async def before_exit() -> None:  # SIGTERM/SIGINT, while the server still serves
        if local is not None:
            from kraken.api.shutdown import end_local_agent_jobs

            await end_local_agent_jobs(api.state.kraken, settings.name or "local")

    server = _server_ending_its_jobs(config, before_exit)
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers no started event
        await asyncio.sleep(0.05)
    if server.started:
        state = api.state.kraken
        url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}"
        print(f"kraken {role}: listening on {url} (API under /api, OpenAPI at /openapi.json)", flush=True)
        if sample:
            from kraken.sample import ensure_sample_project

            await ensure_sample_project(runtime.db, settings)
        if local_agent:
            from kraken.core.security import new_secret

            state.local_agent_token = new_secret()  # enrolls this agent, approved: the server started it
            local = start_local_agent(settings, url, state.local_agent_token)
    await serving
    if local is not None:
        await local.stop()


EXIT_WORK_SECONDS = 10.0  # the longest a stop signal waits for the work before the exit


def _server_ending_its_jobs(config: uvicorn.Config, before_exit: Callable[[], Awaitable[None]]) -> uvicorn.Server:
    """A uvicorn server that, on the first stop signal, runs ``before_exit`` (bounded by
    ``EXIT_WORK_SECONDS``) before it stops serving; a second signal stops it at once."""
    import uvicorn

    class Server(uvicorn.Server):
        leaving = False
        work: asyncio.Task[None] | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.leaving or self.should_exit:
                super().handle_exit(sig, frame)
                return
            self.leaving = True
            # a signal handler runs between any two bytecodes: start the work from the loop
            asyncio.get_running_loop().call_soon_threadsafe(self._begin, sig, frame)

        def _begin(self, sig: int, frame: FrameType | None) -> None:
            self.work = asyncio.get_running_loop().create_task(self._leave(sig, frame))

        async def _leave(self, sig: int, frame: FrameType | None) -> None:
            try:
                await asyncio.wait_for(before_exit(), EXIT_WORK_SECONDS)
            except Exception:
                logging.getLogger("kraken").exception("while stopping")
            finally:
                super().handle_exit(sig, frame)

    return Server(config)


def start_local_agent(settings: Settings, url: str, token: str) -> LocalAgentProcess:
    """``kraken serve``'s agent: its own process and data dir; as root, jobs run as the job user."""
    from kraken.agent.local import LocalAgentConfig, LocalAgentProcess

    local = LocalAgentProcess(
        LocalAgentConfig(
            server=url,
            token=token,
            name=settings.name or "local",
            data_dir=str(settings.effective_local_agent_dir),
            job_user=settings.job_user,
            groups=settings.groups,
            labels=settings.labels,
            heartbeat_interval=settings.heartbeat_interval,
            log_level=settings.log_level,
            log_format=settings.log_format,
            service_logs=settings.service_logs_store,
            service_logs_level=settings.service_logs_level,
            service_logs_buffer=settings.service_logs_buffer,
        )
    )
    local.start()
    return local


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Host = None,
    port: Port = None,
    database_url: DbUrl = None,
    admin_password: Annotated[str | None, typer.Option(help="[KRAKEN_ADMIN_PASSWORD]")] = None,
    agent_token: Annotated[str | None, typer.Option(help="[KRAKEN_AGENT_TOKEN]")] = None,
    auto_approve: AutoApprove = None,
    local_agent: Annotated[bool, typer.Option(help="run one agent with the direct executor in a child process")] = True,
    local_agent_dir: Annotated[
        Path | None, typer.Option(help="the local agent's data dir [KRAKEN_LOCAL_AGENT_DIR, default <data-dir>-agent]")
    ] = None,
    job_user: Annotated[
        str | None,
        typer.Option(help="as root: the local agent's jobs run as this user [KRAKEN_JOB_USER, default kraken-job]"),
    ] = None,
    sample_project: Annotated[bool, typer.Option(help="create the sample project 'demo' if missing")] = False,
    log_level: LogLevel = None,
) -> None:
    """Everything in one place: API, controller, background tasks, SQLite, and a local agent (its own process)."""
    settings = settings_from(
        service="serve",
        data_dir=data_dir,
        host=host,
        port=port,
        database_url=database_url,
        admin_password=admin_password,
        agent_token=agent_token,
        auto_approve=auto_approve,
        local_agent_dir=local_agent_dir,
        job_user=job_user,
        log_level=log_level,
    )
    if local_agent:
        from kraken.agent.local import settle_local_agent

        try:
            settle_local_agent(settings)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    not_dumpable()
    from kraken.core.backup import BackupError, serve_lock

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(serve_lock(settings.data_dir))  # kept while serving: restores wait for the stop
        except BackupError as exc:
            typer.echo(f"kraken serve: {exc}", err=True)
            raise typer.Exit(2) from exc
        _run(_serve_http(settings, "serve", local_agent=local_agent, sample=sample_project))


@app.command()
def server(
    database_url: DbUrl = None,
    redis_url: RedisUrl = None,
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    admin_password: Annotated[str | None, typer.Option(help="[KRAKEN_ADMIN_PASSWORD]")] = None,
    agent_token: Annotated[str | None, typer.Option(help="[KRAKEN_AGENT_TOKEN]")] = None,
    auto_approve: AutoApprove = None,
    log_level: LogLevel = None,
) -> None:
    """The REST API and agent endpoint (scale-out: run several behind a load balancer)."""
    settings = settings_from(
        service="server",
        database_url=database_url,
        redis_url=redis_url,
        host=host,
        port=port,
        data_dir=data_dir,
        admin_password=admin_password,
        agent_token=agent_token,
        auto_approve=auto_approve,
        log_level=log_level,
    )
    _run(_serve_http(settings, "server"))


@app.command()
def controller(
    database_url: DbUrl = None, redis_url: RedisUrl = None, log_level: LogLevel = None, metrics_port: MetricsPort = None
) -> None:
    """Scheduler, watchdog and planner (scale-out)."""
    settings = settings_from(service="controller", database_url=database_url, redis_url=redis_url, log_level=log_level)
    metrics = _metrics_settings(metrics_port)

    async def main() -> None:
        from kraken.core.migrate import upgrade_in_child
        from kraken.observability.background import running
        from kraken.observability.gauges import GAUGES
        from kraken.observability.listener import maybe_listen
        from kraken.runtime import Runtime

        await upgrade_in_child(settings.effective_database_url)
        runtime = Runtime(settings, role="controller")
        GAUGES.watch_pools(runtime.db)
        await runtime.start()
        runtime.start_controller()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running("controller", settings.redis_url), maybe_listen(metrics, "controller"):
            print("kraken controller: running", flush=True)
            names = ", ".join(svc.name for svc in runtime.services)
            logging.getLogger("kraken.controller").info("controller running its services: %s", names)
            await stop.wait()
        await runtime.stop()

    _run(main())


@app.command()
def worker(
    database_url: DbUrl = None, redis_url: RedisUrl = None, log_level: LogLevel = None, metrics_port: MetricsPort = None
) -> None:
    """Background tasks from Redis through arq (scale-out)."""
    settings = settings_from(service="worker", database_url=database_url, redis_url=redis_url, log_level=log_level)
    metrics = _metrics_settings(metrics_port)
    from kraken.observability.background import running
    from kraken.observability.listener import maybe_listen
    from kraken.workers.arq_settings import run_worker

    async def main() -> None:
        async with running("worker", settings.redis_url), maybe_listen(metrics, "worker"):
            print("kraken worker: running", flush=True)
            await run_worker(settings)

    _run(main())


def _metrics_settings(port: int | None) -> Any:
    """The metrics listener's settings (KRAKEN_METRICS_*); --metrics-port wins over the environment."""
    from pydantic import ValidationError

    from kraken.observability.settings import MetricsSettings

    try:
        given: dict[str, Any] = {"port": port} if port is not None else {}
        return MetricsSettings(**given)
    except ValidationError as exc:
        raise typer.BadParameter(f"metrics settings: {exc}") from exc


@app.command()
def agent(
    server: Annotated[str | None, typer.Option(help="server URL [KRAKEN_SERVER]")] = None,
    token: Annotated[
        str | None, typer.Option(help="the shared token to enroll with (not needed once enrolled) [KRAKEN_AGENT_TOKEN]")
    ] = None,
    name: Annotated[str | None, typer.Option(help="agent name [KRAKEN_NAME, default hostname]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="work directory [KRAKEN_DATA_DIR]")] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(help="agents group to ask for when enrolling; an administrator decides (repeatable)"),
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="user label, e.g. gpu (repeatable)")] = None,
    executor: Annotated[list[str] | None, typer.Option(help="executors to offer (default: all found)")] = None,
    limit: Annotated[
        list[str] | None,
        typer.Option(help="container limit for jobs whose stage sets none: cpus=2, memory=1g, pids=512, network=false"),
    ] = None,
    job_user: Annotated[
        str | None,
        typer.Option(help="agent running as root: run direct jobs as this unprivileged user [KRAKEN_JOB_USER]"),
    ] = None,
    keep_workdirs: Annotated[
        int,
        typer.Option(
            min=0,
            envvar="KRAKEN_KEEP_WORKDIRS",
            help="keep the work directories of the last N ended direct jobs for debugging (0: remove each "
            "when its job ends) [KRAKEN_KEEP_WORKDIRS]",
        ),
    ] = 0,
    log_level: LogLevel = None,
) -> None:
    """Run jobs on this machine for the server at --server."""
    settings = settings_from(
        service="agent",
        server=server,
        agent_token=token,
        name=name,
        data_dir=data_dir,
        groups=group,
        labels=label,
        job_user=job_user,
        log_level=log_level,
    )
    from kraken.agent.cleanup import set_keep_workdirs
    from kraken.agent.client import Agent, ShipLogs
    from kraken.agent.credentials import credential_path
    from kraken.agent.executors.job_user import set_job_user
    from kraken.agent.limits import parse_limits

    work = data_dir or (settings.data_dir if "KRAKEN_DATA_DIR" in os.environ else Path("./kraken-agent"))
    if not settings.agent_token and not credential_path(work).exists():
        raise typer.BadParameter("the agent token is required to enroll (--token or KRAKEN_AGENT_TOKEN)")

    set_keep_workdirs(keep_workdirs)
    try:
        set_job_user(settings.job_user)
    except (PermissionError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    not_dumpable()  # the token in its memory and environment stays out of the steps' reach

    try:
        limits = parse_limits(limit or settings.limits)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    a = Agent(
        settings.server,
        settings.agent_token or "",
        name=settings.name,
        data_dir=work,
        groups=settings.groups,
        labels=settings.labels,
        executors=executor or None,
        limits=limits,
        heartbeat_interval=settings.heartbeat_interval,
        ship_logs=(
            ShipLogs(settings.service_logs_level, settings.service_logs_buffer) if settings.service_logs_store else None
        ),
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(a.run_forever())
        stopping: list[asyncio.Task[None]] = []

        async def stop(why: str) -> None:
            await a.stop(why)  # the running job ends, told to the server (bounded)
            task.cancel()

        def on_signal(sig: signal.Signals) -> None:
            if stopping:  # a second signal: at once
                task.cancel()
            else:
                stopping.append(loop.create_task(stop(sig.name)))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    _run_agent(main())


@app.command("local-agent", hidden=True)
def local_agent_child() -> None:
    """``kraken serve``'s local agent (started by it; settings on stdin)."""
    from kraken.agent.local import run_child

    not_dumpable()
    _run_agent(run_child())


@db_app.command("upgrade")
def db_upgrade(database_url: DbUrl = None, data_dir: DataDir = None, revision: str = "head") -> None:
    """Apply the database migrations."""
    settings = settings_from(database_url=database_url, data_dir=data_dir)
    from kraken.core.migrate import upgrade_sync
    from kraken.runtime import prepare_data_dir

    prepare_data_dir(settings)

    upgrade_sync(settings.effective_database_url, revision)
    typer.echo(f"database at {settings.effective_database_url} is at {revision}")


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="where to write the backup")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    force: Annotated[bool, typer.Option(help="replace FILE if it exists")] = False,
) -> None:
    """Back up the embedded SQLite database, consistently, while kraken serve runs."""
    from kraken.core.backup import BackupError, backup

    settings = settings_from(database_url=database_url, data_dir=data_dir)
    try:
        revision = backup(settings.effective_database_url, file, overwrite=force)
    except BackupError as exc:
        typer.echo(f"kraken db backup: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"backed up {settings.effective_database_url} (revision {revision}) to {file}")
    typer.echo("keep the secrets key (secrets.key or KRAKEN_SECRETS_KEY) with it, stored apart")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="a file written by kraken db backup")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Replace the embedded database with a backup (stop kraken serve first)."""
    from kraken.core.backup import BackupError, restore

    settings = settings_from(database_url=database_url, data_dir=data_dir)
    try:
        revision = restore(settings.effective_database_url, file, settings.data_dir)
    except BackupError as exc:
        typer.echo(f"kraken db restore: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"restored {file} (revision {revision}) into {settings.effective_database_url}")


@logs_app.command("copy")
def logs_copy(
    source: Annotated[str, typer.Option("--from", help="the store to read: database or opensearch")],
    target: Annotated[str, typer.Option("--to", help="the store to write: opensearch or database")],
    since: Annotated[str, typer.Option(help="lines stored from this ISO date or time on (UTC unless given)")],
    until: Annotated[str, typer.Option(help="lines stored before this ISO date or time")],
    project: Annotated[list[int] | None, typer.Option(help="only this project's lines (id; repeatable)")] = None,
    after: Annotated[str | None, typer.Option(help="go on after this cursor (printed by an interrupted copy)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count the lines of the range, copy nothing")] = False,
    opensearch_url: Annotated[str | None, typer.Option(help="http(s)://host:9200 [KRAKEN_OPENSEARCH_URL]")] = None,
    index_prefix: Annotated[
        str | None, typer.Option(help="[KRAKEN_OPENSEARCH_INDEX_PREFIX, default kraken-logs]")
    ] = None,
    database_url: DbUrl = None,
    data_dir: DataDir = None,
) -> None:
    """Copy the job log lines stored in a time range from one log store to the other (idempotent)."""
    from kraken.logs.copy import CopyError, TimeRange, copy_logs, parse_time

    stores = {"database", "opensearch"}
    if source not in stores or target not in stores or source == target:
        raise typer.BadParameter("--from and --to: one is database, the other opensearch")
    settings = settings_from(database_url=database_url, data_dir=data_dir)
    url = opensearch_url or settings.opensearch_url
    if not url:
        raise typer.BadParameter("--opensearch-url (or KRAKEN_OPENSEARCH_URL) is required")
    prefix = index_prefix or settings.opensearch_index_prefix
    try:
        rng = TimeRange(parse_time("--since", since), parse_time("--until", until), tuple(sorted(set(project or []))))
        run_async(copy_logs(settings.effective_database_url, url, prefix, source, rng, after, dry_run, typer.echo))
    except CopyError as exc:
        typer.echo(f"kraken logs copy: {exc}", err=True)
        raise typer.Exit(2) from exc


def main() -> None:
    app()
