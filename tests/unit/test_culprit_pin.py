"""Pinning a bisection flow's jobs: the git steps to the commit, the pytest steps to the tests."""

from __future__ import annotations

import pytest

from kraken.culprits.pin import is_bisection, k_expression, pin_specs, without_notifications
from kraken.stage import JobSpec, StageSchemaError
from kraken.stage.specs import StepSpec

SHA = "a" * 40


def spec(*steps: tuple[str, dict[str, object]]) -> JobSpec:
    return JobSpec(
        name="j",
        timeout=60,
        executor="direct",
        steps=[
            StepSpec(index=i, tool=t, name=None, fields=dict(f), timeout=None, when=None)
            for i, (t, f) in enumerate(steps)
        ],
    )


def test_git_and_pytest_steps_are_pinned() -> None:
    trigger = {"reason": "culprit", "commit": SHA, "tests": ["tests.test_a::test_x[1]", "t.T::test_y", "test_x"]}
    assert is_bisection(trigger) and not is_bisection({"reason": "manual"}) and not is_bisection(None)
    out = pin_specs(
        trigger,
        [
            spec(
                ("git", {"checkout": "r", "depth": 1}),
                ("pytest", {"params": "tests"}),
                ("pytest", {"params": ["-x"]}),
                ("shell", {"cmd": "true"}),
            )
        ],
    )
    steps = out[0].steps
    assert steps[0].fields == {"checkout": "r", "commit": SHA}
    assert steps[1].fields == {"params": "tests -k 'test_x or test_y'"}
    assert steps[2].fields == {"params": ["-x", "-k", "test_x or test_y"]}
    assert steps[3].fields == {"cmd": "true"}


def test_refusals_name_the_problem() -> None:
    with pytest.raises(StageSchemaError, match="needs a 'git' step"):
        pin_specs({"commit": SHA, "tests": ["m::test_a"]}, [spec(("pytest", {}))])
    with pytest.raises(StageSchemaError, match="bad commit"):
        pin_specs({"commit": "--upload-pack=x", "tests": ["m::test_a"]}, [spec(("git", {"checkout": "r"}))])
    with pytest.raises(StageSchemaError, match="no pytest name"):
        k_expression(["m::(weird name)"])


def test_bisection_runs_send_no_notifications() -> None:
    schema = {"jobs": [], "notification": {"slack": {"channel": "#ci"}}, "timeout": 60}
    assert without_notifications(schema) == {"jobs": [], "timeout": 60}
