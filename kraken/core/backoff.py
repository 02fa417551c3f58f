"""Reconnect delays: exponential, capped, with full jitter, reset once a connection has worked."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``next()`` gives the delay before the next attempt; ``reset()`` after a success.

    The n-th delay is drawn uniformly from [first/2, min(cap, first * 2**n)]: many clients that
    lost the same server at once come back spread out instead of in one storm."""

    first: float = 0.5
    cap: float = 10.0
    attempts: int = field(default=0, init=False)

    def next(self) -> float:
        high = min(self.cap, self.first * (2**self.attempts))
        self.attempts += 1
        return random.uniform(min(self.first / 2, high), high)

    def reset(self) -> None:
        self.attempts = 0
