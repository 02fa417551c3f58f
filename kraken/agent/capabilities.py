"""What this agent can do, reported to the server on connect."""

from __future__ import annotations

import asyncio
import os
import platform
from pathlib import Path
from typing import Any

import psutil

from kraken.agent.executors import ALL_EXECUTORS, executor_class

PROBE_TIMEOUT = 5.0


def os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        if path.exists():
            for line in path.read_text().splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    out[k] = v.strip().strip('"')
            break
    return out


def system_names(rel: dict[str, str]) -> list[str]:
    """Names a stage's ``system`` may use to mean this machine, e.g. debian-12, debian, linux."""
    names = []
    os_id, version = rel.get("ID", ""), rel.get("VERSION_ID", "")
    if os_id and version:
        names.append(f"{os_id}-{version}")
    if os_id:
        names.append(os_id)
    names.append(platform.system().lower())
    return names


async def probe_executors(enabled: list[str] | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in enabled or list(ALL_EXECUTORS):
        try:
            cls = executor_class(name)
            cap = await asyncio.wait_for(cls.probe(), PROBE_TIMEOUT)
        except (ImportError, KeyError, TimeoutError, OSError):
            continue
        if cap is not None:
            found[cap.name] = {"version": cap.version, **cap.details}
    return found


async def capabilities(labels: list[str], executors: list[str] | None = None) -> dict[str, Any]:
    rel = os_release()
    return {
        "executors": await probe_executors(executors),
        "os": rel.get("PRETTY_NAME") or platform.platform(),
        "os_id": rel.get("ID", platform.system().lower()),
        "os_version": rel.get("VERSION_ID", platform.release()),
        "systems": system_names(rel) + labels,
        "arch": platform.machine(),
        "cpus": os.cpu_count() or 1,
        "memory_mb": psutil.virtual_memory().total // (1024 * 1024),
        "labels": labels,
        "python": platform.python_version(),
    }
