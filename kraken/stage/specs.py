"""What a stage expands to: the jobs of a run and their steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_JOB_TIMEOUT = 3600  # seconds


@dataclass
class StepSpec:
    index: int
    tool: str
    name: str | None
    fields: dict[str, Any]  # the tool's fields, interpolated (no tool/name/timeout/when/attempts/...)
    timeout: float | None
    when: str | None
    attempts: int = 1
    sleep_time_after_attempt: float = 0.0
    tool_version: str | None = None


@dataclass
class JobSpec:
    name: str
    timeout: float  # seconds
    executor: str  # "direct" | "docker" | "lxd"
    system: str = "any"
    agents_group: str = "all"
    config: dict[str, Any] | None = None  # the whole config dict, incl. "name"
    config_name: str | None = None
    steps: list[StepSpec] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)  # cpus / memory (bytes) / pids / network
    # a part of a job split by timing: {"part", "parts", "group" (the job's name), "tests_list"}
    split: dict[str, Any] | None = None
