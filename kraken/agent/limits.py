"""Resource limits an agent applies to every container job unless the stage sets its own."""

from __future__ import annotations

from typing import Any

KEYS = ("cpus", "memory", "pids", "network")


def parse_limits(items: list[str]) -> dict[str, Any]:
    """``["memory=1g", "cpus=2", "pids=512", "network=false"]`` -> limits; a clear error for bad input."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in KEYS or not value:
            raise ValueError(f"--limit {item!r}: expected KEY=VALUE with KEY one of {', '.join(KEYS)}")
        try:
            if key == "cpus":
                out[key] = float(value)
            elif key == "pids":
                out[key] = int(value)
            elif key == "network":
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(value)
                out[key] = value.lower() in ("true", "yes", "1")
            else:
                out[key] = int(value) if value.isdigit() else value  # bytes or "512m"
        except ValueError as exc:
            raise ValueError(f"--limit {item!r}: {value!r} is not a valid {key}") from exc
    return out


def job_limits(agent_defaults: dict[str, Any], stage_limits: dict[str, Any] | None) -> dict[str, Any]:
    """The stage's limits win; the agent's fill in what the stage leaves out."""
    return {**agent_defaults, **(stage_limits or {})}
