"""Checks of a branch's stage graph: every parent exists and parents form no cycle."""

from __future__ import annotations

from collections.abc import Mapping

from kraken.stage.errors import StageSchemaError

ROOT = "root"


def _is_root(parent: str | None) -> bool:
    return parent is None or parent == ROOT


def check_stage_graph(parents: Mapping[str, str | None]) -> None:
    """``parents`` maps each stage name to its parent's name (``None``/``"root"`` for none)."""
    for stage in sorted(parents):
        parent = parents[stage]
        if not _is_root(parent) and parent not in parents:
            known = ", ".join(f"'{name}'" for name in sorted(parents))
            raise StageSchemaError(
                f"stage '{stage}' has parent '{parent}', which is not a stage of this branch (stages: {known})",
                path="parent",
            )
    done: set[str] = set()
    for stage in sorted(parents):
        chain: list[str] = []
        current: str | None = stage
        while current is not None and not _is_root(current) and current not in done:
            if current in chain:
                cycle = [*chain[chain.index(current) :], current]
                raise StageSchemaError(
                    "stages form a cycle: " + " -> ".join(f"'{name}'" for name in cycle), path="parent"
                )
            chain.append(current)
            current = parents[current]
        done.update(chain)
