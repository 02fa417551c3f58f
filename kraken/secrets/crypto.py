"""The key that encrypts secrets at rest, kept outside the database.

``KRAKEN_SECRETS_KEY`` (a Fernet key) wins; otherwise ``<data_dir>/secrets.key`` is read, or
generated once (mode 0600).  Every role that reads secrets (server, controller, worker) must
use the same key: in scale-out set ``KRAKEN_SECRETS_KEY`` everywhere.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from kraken.core.config import Settings

KEY_FILE = "secrets.key"


class SecretsKeyError(Exception):
    """A secret cannot be decrypted with this key (another key encrypted it)."""


class SecretBox:
    def __init__(self, key: bytes | str) -> None:
        # cryptography (~7 MB) is loaded by the first secret read or written, not at start (#13)
        from cryptography.fernet import Fernet

        self._fernet = Fernet(key)

    def encrypt(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(value)).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        from cryptography.fernet import InvalidToken

        try:
            data: dict[str, Any] = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsKeyError(
                "a secret cannot be decrypted: it was encrypted with another key "
                "(KRAKEN_SECRETS_KEY or <data_dir>/secrets.key differ between the roles)"
            ) from None
        return data


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def _load_or_create(path: Path) -> bytes:
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this data dir made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


_boxes: dict[str, SecretBox] = {}
_lock = threading.Lock()


def secret_box(settings: Settings) -> SecretBox:
    """The process's SecretBox for these settings (the key is read or generated once)."""
    source = settings.secrets_key or f"file:{key_file(settings).resolve()}"
    with _lock:
        box = _boxes.get(source)
        if box is None:
            key: bytes | str = settings.secrets_key or _load_or_create(key_file(settings))
            box = SecretBox(key)
            _boxes[source] = box
        return box
