"""Login rate limits, per client address and per user name, with exponential backoff.

Each key may fail ``free`` times; after that every further attempt must wait
``base * 2**(failures - free)`` seconds (at most ``cap``) after the last failure, else it gets
a 429 with ``Retry-After`` without its password being checked. A successful login clears the
user's count (not the address's: one known account must not reset the guessing of others).
Counts live in the server process (each replica counts its own) and are forgotten, oldest first,
beyond ``max_keys``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class _Entry:
    failures: int = 0
    last: float = 0.0


@dataclass
class Backoff:
    free: int
    base: float = 1.0
    cap: float = 300.0
    max_keys: int = 100_000
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        entry = self._entries.get(key)
        if entry is None or entry.failures < self.free:
            return 0.0
        delay = min(self.cap, self.base * 2 ** min(entry.failures - self.free, 30))
        return max(0.0, entry.last + float(delay) - now)

    def failed(self, key: str, now: float) -> None:
        entry = self._entries.pop(key, None) or _Entry()
        entry.failures += 1
        entry.last = now
        self._entries[key] = entry
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def clear(self, key: str) -> None:
        self._entries.pop(key, None)


class LoginLimits:
    def __init__(self, per_user: int = 5, per_address: int = 20) -> None:
        self.users = Backoff(free=per_user)
        self.addresses = Backoff(free=per_address)

    def retry_after(self, address: str, username: str) -> int:
        """Whole seconds this attempt must wait; 0: it may go on."""
        now = time.monotonic()
        wait = max(self.users.wait(username, now), self.addresses.wait(address, now))
        return math.ceil(wait)

    def failed(self, address: str, username: str) -> None:
        now = time.monotonic()
        self.users.failed(username, now)
        self.addresses.failed(address, now)

    def succeeded(self, username: str) -> None:
        self.users.clear(username)
