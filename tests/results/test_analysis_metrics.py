"""The result analysis's metrics move with a real analysis (SQLite and PostgreSQL)."""

from __future__ import annotations

from kraken.observability.metrics import ANALYSIS_DURATION, ANALYSIS_ROWS
from tests.results.conftest import World


def _analyses() -> float:
    return sum(s.value for m in ANALYSIS_DURATION.collect() for s in m.samples if s.name.endswith("_count"))


async def test_analysis_duration_and_rows_are_counted(world: World) -> None:
    names = [f"tests/test_metrics.py::test_{i}" for i in range(25)]
    rows, analyses = ANALYSIS_ROWS._value.get(), _analyses()
    await world.ci_flow([[n, "passed", 0.01, None, None] for n in names])
    assert ANALYSIS_ROWS._value.get() == rows + 25
    assert _analyses() == analyses + 1
