"""LXD without a nic in its profile (an LXD initialised without a network): a job that wants network
gets an eth0 on the managed bridge; without one, a clear error instead of a container with no link."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from kraken.agent.executors.base import ExecutorError
from kraken.agent.executors.lxd import PROFILES_ENV, network_devices
from tests.executors.conftest import MakeExecutor, require_engine
from tests.executors.test_limits import interfaces, run

NIC = {"eth0": {"type": "nic", "network": "lxdbr0", "name": "eth0"}}
ROOT = {"root": {"type": "disk", "path": "/", "pool": "default"}}


def test_network_devices_rules() -> None:
    assert network_devices(True, {**ROOT, **NIC}, [], ["default"]) == {}  # the profile's nic serves
    assert network_devices(False, {**ROOT, **NIC}, ["lxdbr0"], ["default"]) == {"eth0": {"type": "none"}}
    two = {**NIC, "eth1": {"type": "nic", "network": "other"}}
    assert network_devices(False, two, [], ["default"]) == {"eth0": {"type": "none"}, "eth1": {"type": "none"}}
    assert network_devices(True, ROOT, ["br1", "br2"], ["p"]) == {
        "eth0": {"type": "nic", "network": "br1", "name": "eth0"}
    }
    assert network_devices(False, ROOT, [], ["p"]) == {}
    with pytest.raises(ExecutorError, match=r"profile\(s\) p have no nic device and LXD has no managed bridge"):
        network_devices(True, ROOT, [], ["p"])


@pytest.fixture
def nic_less_profile(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require_engine("lxd")
    name = f"kraken-test-nonic-{uuid.uuid4().hex[:6]}"
    subprocess.run(["lxc", "profile", "create", name], check=True, capture_output=True)
    try:
        subprocess.run(
            ["lxc", "profile", "device", "add", name, "root", "disk", "path=/", "pool=default"],
            check=True,
            capture_output=True,
        )
        monkeypatch.setenv(PROFILES_ENV, name)
        yield name
    finally:
        subprocess.run(["lxc", "profile", "delete", name], check=False, capture_output=True)


@pytest.mark.lxd
@pytest.mark.timeout(240)
async def test_a_profile_without_nic_still_gives_network_when_asked(
    nic_less_profile: str, make_executor: MakeExecutor
) -> None:
    connected = await make_executor("lxd")
    code, lines = await run(connected, "cat /proc/net/dev")
    assert code == 0 and "eth0" in interfaces(lines), lines
    isolated = await make_executor("lxd", limits={"network": False})
    code, lines = await run(isolated, "cat /proc/net/dev")
    assert code == 0 and interfaces(lines) == {"lo"}, lines


@pytest.mark.lxd
async def test_an_unknown_profile_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, make_executor: MakeExecutor
) -> None:
    monkeypatch.setenv(PROFILES_ENV, "no-such-profile-kraken")
    with pytest.raises(ExecutorError, match="LXD profile 'no-such-profile-kraken' not found"):
        await make_executor("lxd")
