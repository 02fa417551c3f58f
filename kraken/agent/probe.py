"""The agent's start-up look at its engines, in a short-lived child process.

Asking Docker and LXD what they offer (and removing the containers an earlier run of this agent
left) imports their client libraries (aiodocker/aiohttp, pylxd/requests), about 25 MB that an
idle agent would otherwise keep for ever. The child does it and prints the capabilities as JSON;
the agent process imports an engine's library only when a job uses that engine.

    python -m kraken.agent.probe NAME --home DATA_DIR --label L ... --executor E ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import orjson

log = logging.getLogger(__name__)

PROBE_SECONDS = 60.0  # engines answer within seconds; orphan clean-up may take a while


async def _probe(name: str, home: str, labels: list[str], executors: list[str] | None) -> dict[str, Any]:
    from kraken.agent.capabilities import capabilities
    from kraken.agent.executors import executor_class

    for engine in executors or ["docker", "lxd"]:
        try:
            n = await executor_class(engine).remove_orphans(name, home)
        except Exception as exc:  # the engine may not exist here
            log.debug("no orphan clean-up for %s: %s", engine, exc)
            continue
        if n:
            log.info("removed %d %s environment(s) left by an earlier run", n, engine)
    return await capabilities(labels, executors)


async def probe_in_child(name: str, home: str, labels: list[str], executors: list[str] | None) -> dict[str, Any]:
    """The capabilities, found by a child process (its log lines go to this process's stderr).

    The child also removes the containers an earlier run of this agent (this name and data dir
    ``home``) left; another agent's of the same name elsewhere are not touched."""
    argv = [sys.executable, "-m", "kraken.agent.probe", name, "--home", home]
    for label in labels:
        argv += ["--label", label]
    for executor in executors or []:
        argv += ["--executor", executor]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), PROBE_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"probing the executors took more than {PROBE_SECONDS:g} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"probing the executors failed (exit code {proc.returncode})")
    caps: dict[str, Any] = orjson.loads(out)
    return caps


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m kraken.agent.probe")
    parser.add_argument("name")
    parser.add_argument("--home", required=True, help="the agent's data dir")
    parser.add_argument("--label", action="append", default=[])
    parser.add_argument("--executor", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    caps = asyncio.run(_probe(args.name, args.home, args.label, args.executor or None))
    sys.stdout.buffer.write(orjson.dumps(caps))


if __name__ == "__main__":
    main()
