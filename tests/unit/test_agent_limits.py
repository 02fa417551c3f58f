"""The agent's default container limits (--limit) and their bad input."""

from __future__ import annotations

import pytest

from kraken.agent.limits import job_limits, parse_limits


def test_parse_and_merge_with_the_stage() -> None:
    agent = parse_limits(["memory=1g", "cpus=1.5", "pids=256", "network=false"])
    assert agent == {"memory": "1g", "cpus": 1.5, "pids": 256, "network": False}
    assert job_limits(agent, {"memory": "64m"}) == {"memory": "64m", "cpus": 1.5, "pids": 256, "network": False}
    assert job_limits(agent, None) == agent


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("memory", "expected KEY=VALUE"),
        ("swap=1g", "KEY one of cpus, memory, pids, network"),
        ("pids=many", "'many' is not a valid pids"),
        ("network=maybe", "not a valid network"),
    ],
)
def test_bad_limits_are_refused_with_the_item(item: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as err:
        parse_limits([item])
    assert item in str(err.value)
