from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kraken.stage import shutdown_sandbox

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _stop_sandbox_workers() -> Iterator[None]:
    yield
    asyncio.run(shutdown_sandbox())


@pytest.fixture
def overview_code() -> str:
    """The stage example of docs' kraken-ci-overview.md, verbatim."""
    return (DATA / "overview_stage.star").read_text()


def code_returning(schema: dict[str, Any]) -> str:
    """Stage code whose ``stage(ctx)`` returns ``schema`` (Python literals are valid starlark)."""
    return f"def stage(ctx):\n    return {schema!r}\n"


@pytest.fixture
def make_code() -> Callable[[dict[str, Any]], str]:
    return code_returning


def minimal_job(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "name": "build",
        "steps": [{"tool": "shell", "cmd": "make"}],
        "environments": [{"system": "ubuntu-24.04"}],
    }
    job.update(overrides)
    return job


@pytest.fixture
def job() -> Callable[..., dict[str, Any]]:
    return minimal_job
