"""A job's share of a suite split by timing (job key ``"parallel": N``, ``docs/stages.md``).

Each of the N parts of a split job gets the same inputs: the whole list of tests (collected by
pytest itself in the part's one pytest process, or printed by the job's ``tests_list`` command),
and the durations the branch's history gives for them (sent with the job, ``JobSpec.split``).
Every part computes the same deterministic assignment (``kraken.agent.tools.split_assign``) and
keeps its own share, so the parts need no coordination and together run every test exactly once.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from pathlib import Path
from typing import Any

from kraken.agent.tools import split_assign
from kraken.agent.tools.base import ToolContext
from kraken.agent.tools.split_assign import assign, pytest_result_name, share

__all__ = ["assign", "pytest_result_name", "share"]


def split_of(ctx: ToolContext) -> dict[str, Any] | None:
    """The job's split (``{"part", "parts", "durations", "tests_list"}``), or None."""
    split = ctx.extra.get("split")
    return split if isinstance(split, dict) and int(split.get("parts") or 1) > 1 else None


async def write_list(ctx: ToolContext, names: list[str], what: str) -> str:
    """Write ``names`` one a line to a new file of the job's ``.kraken`` directory; its path."""
    path = posixpath.join(ctx.executor.workdir, ".kraken", f"{what}-{ctx.step_index}-{uuid.uuid4().hex[:8]}.txt")
    await ctx.executor.write_file(path, "".join(f"{n}\n" for n in names).encode())
    return path


# A pytest plugin (``-p kraken_share``), run in the part's one pytest process: once the selection is
# collected (after every other selection: -k, -m, --last-failed, ...), it keeps only this part's
# share and reports the others deselected. The share is picked from the collected node ids and
# the durations of $KK_SPLIT_FILE ({"part", "parts", "durations"}) and written, one node id a line,
# to $KK_TESTS_FILE; when that file already exists (a rerun of the failed tests, an xdist worker
# after another), the share it lists is kept as it is. The figures go to $KK_SPLIT_SUMMARY.
PLUGIN = '''"""Kraken: run only this part's share of the collected tests ($KK_SPLIT_FILE -> $KK_TESTS_FILE)."""
import json
import os

import pytest

import kraken_split_assign  # a name pytest_* here would be taken for a hook


def _write(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    path = os.environ.get("KK_TESTS_FILE")
    if not path:
        return
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            keep = {line.rstrip("\\n") for line in f if line.strip()}
    else:
        with open(os.environ["KK_SPLIT_FILE"], encoding="utf-8") as f:
            split = json.load(f)
        picked = kraken_split_assign.pytest_share(
            [item.nodeid for item in items], split["durations"], split["part"], split["parts"]
        )
        keep = set(picked.pop("share"))
        _write(os.environ["KK_SPLIT_SUMMARY"], json.dumps(picked))
        _write(path, "".join(item.nodeid + "\\n" for item in items if item.nodeid in keep))
    selected = [item for item in items if item.nodeid in keep]
    deselected = [item for item in items if item.nodeid not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = selected
'''
PLUGIN_NAME = "kraken_share"
ASSIGN_MODULE = "kraken_split_assign"  # split_assign.py as it is, imported by the plugin
ASSIGN_SOURCE = Path(split_assign.__file__).read_bytes()


async def install_plugin(ctx: ToolContext) -> str:
    """Write the plugin (and the assignment it imports) into the job's environment; the directory
    to put on PYTHONPATH."""
    folder = posixpath.join(ctx.executor.workdir, ".kraken", "pytest-plugins")
    await ctx.executor.write_file(posixpath.join(folder, f"{PLUGIN_NAME}.py"), PLUGIN.encode())
    await ctx.executor.write_file(posixpath.join(folder, f"{ASSIGN_MODULE}.py"), ASSIGN_SOURCE)
    return folder


async def write_split(ctx: ToolContext, split: dict[str, Any]) -> str:
    """Write the part's place and durations (``{"part", "parts", "durations"}``) for the plugin; its path."""
    known = {str(k): float(v) for k, v in (split.get("durations") or {}).items()}
    data = {"part": int(split["part"]), "parts": int(split["parts"]), "durations": known}
    path = posixpath.join(ctx.executor.workdir, ".kraken", f"split-{ctx.step_index}-{uuid.uuid4().hex[:8]}.json")
    await ctx.executor.write_file(path, json.dumps(data).encode())
    return path


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
