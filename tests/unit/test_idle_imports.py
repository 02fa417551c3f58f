"""What an idle process has loaded (issue #13: a lighter agent and server).

Each check runs a fresh interpreter through the same imports (and start-up calls) as the role and
lists ``sys.modules``: a module imported at the top of the wrong file shows up here, whatever
the machine's load (no megabytes are asserted). The server is started and stopped in-process
(its lifespan: migrations, bootstrap, agent hub, controller). /proc/<pid>/maps of the real
processes would say more, but both roles make themselves non-dumpable: unreadable unless root.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loaded by the first job, stage check, notification, secret or scale-out role, never at idle.
NOT_IN_IDLE_SERVER = (
    "alembic",  # migrations run in a child process (kraken.core.migrate.upgrade_in_child)
    "mako",
    "arq",
    "redis",
    "jsonschema",
    "starlark",
    "croniter",
    "ldap3",
    "httpx",
    "rich",
    "pygments",
    "opensearchpy",  # the OpenSearch log store only (KRAKEN_LOGS_STORE=opensearch)
    "tarfile",  # tool packages and container copies, where made or unpacked
)
NOT_IN_IDLE_AGENT = (
    *NOT_IN_IDLE_SERVER,
    "cryptography",  # the server's PyJWT loads it (RS256 for OpenID Connect); the agent verifies no tokens
    "sqlalchemy",
    "sqlmodel",
    "fastapi",
    "starlette",
    "uvicorn",
    "aiodocker",  # the engines are probed in a child (kraken.agent.probe)
    "pylxd",
    "requests",
    "kraken.models",
    "kraken.api",
    "kraken.control",
    "kraken.stage",
)

SERVER = """
import asyncio, json, sys
from kraken.cli import app  # the command line, as `kraken serve` loads it
from kraken.api.app import create_app
from kraken.core.config import Settings
from kraken.core.security import create_access_token, read_access_token
from kraken.runtime import Runtime


async def start_and_stop() -> None:
    settings = Settings(data_dir=sys.argv[1], admin_password="admin-password-0123")
    api = create_app(Runtime(settings, role="serve"), controller=True)
    async with api.router.lifespan_context(api):  # migrations (in a child), bootstrap, hub, controller
        token = create_access_token("admin", "k" * 32, 5)  # the first login
        assert read_access_token(token, "k" * 32) == ("admin", 0)


asyncio.run(start_and_stop())
print(json.dumps(sorted(sys.modules)))
"""

AGENT = """
import json, sys
from kraken.cli import app  # the command line, as `kraken agent` loads it, then what the command imports
from kraken.agent.cleanup import set_keep_workdirs
from kraken.agent.client import Agent
from kraken.agent.credentials import credential_path
from kraken.agent.executors.job_user import set_job_user
from kraken.agent.limits import parse_limits
print(json.dumps(sorted(sys.modules)))
"""


def loaded(code: str, *args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


@pytest.mark.parametrize("role", ["serve", "agent"])
def test_idle_process_loads_no_module_it_does_not_use(role: str, tmp_path: Path) -> None:
    if role == "serve":
        modules, forbidden = loaded(SERVER, str(tmp_path)), NOT_IN_IDLE_SERVER
        assert "fastapi" in modules and "kraken.api.routes.agents" in modules  # the check saw a server
    else:
        modules, forbidden = loaded(AGENT), NOT_IN_IDLE_AGENT
        assert "kraken.agent.client" in modules and "websockets" in modules
    assert present(modules, forbidden) == []


def test_the_forbidden_modules_are_found_when_loaded() -> None:
    """The check itself: a module loaded the old way (at the top of a module) is reported."""
    modules = loaded("import json, sys, croniter, jsonschema\nprint(json.dumps(sorted(sys.modules)))")
    assert present(modules, NOT_IN_IDLE_SERVER) == ["croniter", "jsonschema"]
