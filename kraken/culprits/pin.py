"""How a bisection flow runs one commit and only the regressed tests.

A bisection flow is a DEV flow whose trigger is ``{"reason": "culprit", "search_id", "commit",
"tests"}``.  After its stage code is evaluated, its job specs are rewritten here, so the stage
code needs no change:

- every ``git`` step gets ``commit`` (the tool checks the clone out at that commit, detached;
  ``depth`` is dropped so that the commit is in the clone);
- every ``pytest`` step gets ``-k <expr>``: the regressed tests' function names joined with
  ``or`` (parameters stripped), so pytest runs those tests (and at worst a few namesakes, whose
  results are ignored).

Its stage's ``notification`` is dropped: a bisection step is no news for the stage's channels.

A stage with no ``git`` step cannot be pinned to a commit: its evaluation fails with that reason
(and the search with it).  This module is pure (no database): orchestration calls ``pin_specs``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from kraken.stage import JobSpec
from kraken.stage.errors import StageSchemaError

CULPRIT_REASON = "culprit"
_IDENT = re.compile(r"^\w+$")


def is_bisection(trigger: dict[str, Any] | None) -> bool:
    return bool(trigger) and (trigger or {}).get("reason") == CULPRIT_REASON


def k_expression(tests: list[str]) -> str:
    """A pytest ``-k`` expression selecting ``tests`` (names ``module.Class::test_name[param]``)."""
    names: list[str] = []
    for test in tests:
        name = test.rsplit("::", 1)[-1].split("[", 1)[0]
        name = name.rsplit(".", 1)[-1]  # junit classname-less names: "mod.test"
        if _IDENT.match(name) and name not in names:
            names.append(name)
    if not names:
        raise StageSchemaError(f"culprit finding: no pytest name can select the tests {tests[:5]}")
    return " or ".join(names)


def _params(value: Any) -> list[str] | str:
    return value if isinstance(value, (list, str)) else []


def pin_specs(trigger: dict[str, Any], specs: list[JobSpec]) -> list[JobSpec]:
    """``specs`` with their git steps pinned to the trigger's commit and their pytest steps
    limited to its tests."""
    commit = str(trigger.get("commit") or "")
    tests = [str(t) for t in trigger.get("tests") or []]
    if not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise StageSchemaError(f"culprit finding: bad commit {commit!r}")
    expr = k_expression(tests)
    pinned: list[JobSpec] = []
    has_git = False
    for spec in specs:
        steps = []
        for step in spec.steps:
            fields = dict(step.fields)
            if step.tool == "git":
                has_git = True
                fields["commit"] = commit
                fields.pop("depth", None)
            elif step.tool == "pytest":
                params = _params(fields.get("params"))
                extra = ["-k", expr]
                fields["params"] = [*params, *extra] if isinstance(params, list) else f"{params} -k '{expr}'"
            steps.append(replace(step, fields=fields))
        pinned.append(replace(spec, steps=steps))
    if not has_git:
        raise StageSchemaError("culprit finding needs a 'git' step in the stage to check out each commit; it has none")
    return pinned


def without_notifications(schema: dict[str, Any]) -> dict[str, Any]:
    """The evaluated schema of a bisection run, without its ``notification`` (none is sent)."""
    return {k: v for k, v in schema.items() if k != "notification"}
