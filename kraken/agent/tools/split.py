"""A job's share of a suite split by timing (job key ``"parallel": N``, ``docs/stages.md``).

Each of the N parts of a split job gets the same inputs: the whole list of tests (collected on
the agent: ``pytest --collect-only``, or the job's ``tests_list`` command), and the durations the
branch's history gives for them (sent with the job, ``JobSpec.split``). Every part computes the
same deterministic assignment and keeps its own share, so the parts need no coordination and
together run every test exactly once:

- tests with a history, longest first (ties by name), each to the part with the least expected
  time so far (ties: the lowest part): longest-processing-time first;
- then tests without a history, by name, each to the part with the fewest of them so far (ties:
  the least expected time, then the lowest part): spread by count.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from typing import Any

from kraken.agent.tools.base import ToolContext


def assign(names: list[str], durations: dict[str, float], parts: int) -> list[list[str]]:
    """Every test's part (a list of names per part), deterministic for the given inputs."""
    unique = sorted(set(names))
    load = [0.0] * parts
    shares: list[list[str]] = [[] for _ in range(parts)]
    known = sorted((n for n in unique if n in durations), key=lambda n: (-durations[n], n))
    for name in known:
        i = min(range(parts), key=lambda p: (load[p], p))
        shares[i].append(name)
        load[i] += max(0.0, durations[name])
    counts = [0] * parts
    for name in (n for n in unique if n not in durations):
        i = min(range(parts), key=lambda p: (counts[p], load[p], p))
        shares[i].append(name)
        counts[i] += 1
    return shares


def share(names: list[str], durations: dict[str, float], part: int, parts: int) -> list[str]:
    """The tests of part ``part`` (1-based) of ``parts``, in the order they were listed."""
    mine = set(assign(names, durations, parts)[part - 1])
    return [n for n in dict.fromkeys(names) if n in mine]


def pytest_result_name(nodeid: str) -> str:
    """The name pytest's JUnit report gives a node id (``tests/test_a.py::TestX::test_y[1]`` ->
    ``tests.test_a.TestX::test_y[1]``), the name its results and durations are stored under."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]) + "::" + names[-1] if len(names) > 1 else names[0]


def split_of(ctx: ToolContext) -> dict[str, Any] | None:
    """The job's split (``{"part", "parts", "durations", "tests_list"}``), or None."""
    split = ctx.extra.get("split")
    return split if isinstance(split, dict) and int(split.get("parts") or 1) > 1 else None


async def write_list(ctx: ToolContext, names: list[str], what: str) -> str:
    """Write ``names`` one a line to a new file of the job's ``.kraken`` directory; its path."""
    path = posixpath.join(ctx.executor.workdir, ".kraken", f"{what}-{ctx.step_index}-{uuid.uuid4().hex[:8]}.txt")
    await ctx.executor.write_file(path, "".join(f"{n}\n" for n in names).encode())
    return path


# A pytest plugin (``-p kraken_share``): writes the collected node ids, one a line, to the file
# named by KK_COLLECT_FILE (whatever the verbosity); keeps only the collected tests whose node ids
# the file named by KK_TESTS_FILE lists, after every other selection (the others are deselected).
PLUGIN = '''"""Kraken: list the collected tests ($KK_COLLECT_FILE); run only this part's share ($KK_TESTS_FILE)."""
import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    listing = os.environ.get("KK_COLLECT_FILE")
    if listing:
        with open(listing, "w", encoding="utf-8") as f:
            f.writelines(item.nodeid + "\\n" for item in items)
    path = os.environ.get("KK_TESTS_FILE")
    if not path:
        return
    with open(path, encoding="utf-8") as f:
        keep = {line.rstrip("\\n") for line in f if line.strip()}
    selected = [item for item in items if item.nodeid in keep]
    deselected = [item for item in items if item.nodeid not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = selected
'''
PLUGIN_NAME = "kraken_share"


async def install_plugin(ctx: ToolContext) -> str:
    """Write the plugin into the job's environment; the directory to put on PYTHONPATH."""
    folder = posixpath.join(ctx.executor.workdir, ".kraken", "pytest-plugins")
    await ctx.executor.write_file(posixpath.join(folder, f"{PLUGIN_NAME}.py"), PLUGIN.encode())
    return folder


TESTS_FILE_VAR = "KK_TESTS_FILE"


async def listed_share(ctx: ToolContext, cwd: str | None) -> tuple[str | None, str | None]:
    """For a step that reads ``$KK_TESTS_FILE``: (the file of this part's share, None) or (None, why
    not). The job's ``tests_list`` command (``/bin/sh -c``, in the step's ``cwd``) prints the
    suite's tests one a line, named as their results are (for their durations); it runs once
    per job, the later steps read the same file."""
    split = split_of(ctx)
    if split is None or not split.get("tests_list"):
        return None, None
    if split.get("file"):
        return str(split["file"]), None
    names: list[str] = []

    async def line(text: str) -> None:
        if text.strip():
            names.append(text.strip())

    await ctx.log(f"$ {split['tests_list']}")
    res = await ctx.executor.exec(["/bin/sh", "-c", split["tests_list"]], cwd=cwd, timeout=ctx.timeout, on_line=line)
    if not res.ok:
        return None, f"parallel: the job's tests_list command failed (exit code {res.exit_code})"
    part, parts = int(split["part"]), int(split["parts"])
    known = {str(k): float(v) for k, v in (split.get("durations") or {}).items()}
    mine = share(names, known, part, parts)
    split["file"] = path = await write_list(ctx, mine, "tests")
    expected = sum(known.get(n, 0.0) for n in mine)
    await ctx.log(
        f"part {part} of {parts}: {len(mine)} of {len(names)} tests ({expected:.1f}s expected) in ${TESTS_FILE_VAR}"
    )
    await ctx.info(
        {
            "split": {
                "part": part,
                "parts": parts,
                "tests": len(mine),
                "of": len(names),
                "expected_seconds": round(expected, 3),
            }
        }
    )
    return path, None
