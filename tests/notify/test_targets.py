"""Notification targets: loopback, link-local and denied networks are refused unless allowed;
names are resolved and checked; the request goes to the address that was checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraken.core.config import Settings
from kraken.notify.channels import Message, NotifyError, send
from tests.notify.conftest import Mailbox, Receiver

MSG = Message("run_completed", "s", "t", "http://kraken.example/flows/1", "passed", None, False, {"event": "x"})


async def test_loopback_and_link_local_are_refused_by_default(tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(data_dir=tmp_path)
    for url in (
        f"{receiver.url}/hook",
        f"http://localhost:{receiver.port}/hook",  # a name is resolved, then checked
        f"http://[::ffff:127.0.0.1]:{receiver.port}/hook",  # IPv4 in IPv6 clothes
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://[::1]:9/",
        "http://0.0.0.0:9/",
    ):
        with pytest.raises(NotifyError, match="may not reach"):
            await send("webhook", url, MSG, settings)
    with pytest.raises(NotifyError, match="not an http"):
        await send("webhook", "file:///etc/passwd", MSG, settings)
    assert receiver.attempts == {}


async def test_allowed_networks_and_pinned_host(tmp_path: Path, receiver: Receiver) -> None:
    settings = Settings(data_dir=tmp_path, notify_allow_networks=["127.0.0.0/8"])
    await send("webhook", f"http://localhost:{receiver.port}/hook", MSG, settings)
    [got] = await receiver.wait("/hook", 1)
    assert got.body == {"event": "x"} and got.headers["Host"] == f"localhost:{receiver.port}"
    # an operator can deny more, e.g. a private network
    deny = Settings(data_dir=tmp_path, notify_deny_networks=["127.0.0.0/8", "10.0.0.0/8"], notify_allow_networks=[])
    with pytest.raises(NotifyError, match="may not reach"):
        await send("webhook", "http://10.1.2.3:9/", MSG, deny)


async def test_smtp_server_is_checked_too(tmp_path: Path, smtp: Mailbox) -> None:
    settings = Settings(data_dir=tmp_path, smtp_host=smtp.host, smtp_port=smtp.port)
    with pytest.raises(NotifyError, match=r"SMTP server: .* may not reach"):
        await send("email", "a@example.com", MSG, settings)
    assert smtp.messages == []
    allowed = settings.model_copy(update={"notify_allow_networks": ["127.0.0.1/32"]})
    await send("email", "a@example.com", MSG, allowed)
    smtp.wait(1)


def test_bad_networks_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a network: 'nope'"):
        Settings(data_dir=tmp_path, notify_allow_networks=["nope"])
