"""Real idle processes load no native library they do not use (issue #13: a lighter agent and server).

``kraken serve`` with an agent enrolled, approved (an administrator's login: a JWT is made and read)
and connected: the shared objects each process has mapped (``/proc/<pid>/maps``) name the compiled
packages it imported. Pure-Python modules are checked in ``tests/unit/test_idle_imports.py``.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import Server, start_agent, wait_agent_connected

# compiled parts of packages an idle server has no use for
NOT_IN_SERVER = (
    "/cryptography/",  # secrets' Fernet: first secret; PyJWT is loaded without it (kraken.core.jwt_hmac)
    "/starlark/",  # the stage sandbox runs in its own processes; the server loads it to read no error
    "/rpds/",  # jsonschema's: the first stage or tool check
)
# ... and an idle agent (the engines' clients are loaded in the probe's child, or by a job)
NOT_IN_AGENT = (
    *NOT_IN_SERVER,
    "/sqlalchemy/",
    "/greenlet/",
    "/uvloop/",
    "/httptools/",
    "/_cffi_backend",
    "/watchfiles/",
)


def mapped_libraries(pid: int) -> set[str]:
    lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split()[-1] for line in lines if line.endswith(".so") or ".so." in line.rsplit("/", 1)[-1]}


def offending(pid: int, markers: tuple[str, ...]) -> list[str]:
    return sorted(lib for lib in mapped_libraries(pid) if any(m in lib for m in markers))


def test_idle_server_and_agent_map_no_unused_native_library(server: Server, tmp_path: Path) -> None:
    agent = start_agent(tmp_path, server.url, f"idle-{tmp_path.name}")
    try:
        wait_agent_connected(agent, timeout=60)
        server_libs = mapped_libraries(server.proc.proc.pid)
        assert any("/pydantic_core/" in lib for lib in server_libs)  # the maps were read
        assert offending(server.proc.proc.pid, NOT_IN_SERVER) == []
        assert offending(agent.proc.pid, NOT_IN_AGENT) == []
    finally:
        agent.stop()
