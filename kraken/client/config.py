"""Where the client finds its server and token: ``KRAKEN_URL`` / ``KRAKEN_TOKEN`` in the
environment win, else ``~/.config/kraken/client.json`` (``$XDG_CONFIG_HOME`` honoured), written
by ``kraken client login`` readable by its owner only (0600)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """No server or token known, or an unreadable file: the message says what to do."""


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kraken" / "client.json"


def save(creds: Credentials) -> Path:
    """Writes the file 0600 from its creation (never readable by others, not even briefly)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": creds.url, "token": creds.token}, f)
    os.replace(tmp, path)
    return path


def load() -> Credentials:
    url, token = os.environ.get("KRAKEN_URL"), os.environ.get("KRAKEN_TOKEN")
    stored: dict[str, str] = {}
    path = config_path()
    if (not url or not token) and path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: unreadable ({exc}); run 'kraken client login' again") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: not a JSON object; run 'kraken client login' again")
        stored = {k: v for k, v in data.items() if isinstance(v, str)}
    url = url or stored.get("url")
    token = token or stored.get("token")
    if not url or not token:
        raise ConfigError("not logged in: run 'kraken client login' or set KRAKEN_URL and KRAKEN_TOKEN")
    return Credentials(url.rstrip("/"), token)
