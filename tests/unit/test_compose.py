"""docker-compose.yml: every Kraken role gets the same secrets key, and compose refuses to start
without one (a role generating its own could not read the secrets the others stored)."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


def test_every_kraken_role_requires_the_secrets_key() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    roles = {name: s for name, s in services.items() if "command" in s and s.get("image", "").startswith("${KRAKEN")}
    assert {"migrate", "server-1", "server-2", "controller", "worker", "agent-1"} <= roles.keys()
    for name, service in roles.items():
        value = service["environment"].get("KRAKEN_SECRETS_KEY", "")
        assert value.startswith("${KRAKEN_SECRETS_KEY:?"), f"{name}: {value!r}"
