"""The agent's reconnect delays: jittered, never beyond the cap."""

from __future__ import annotations

from kraken.agent.client import BACKOFF_MAX, BACKOFF_MIN, reconnect_delay


def test_delays_are_jittered_within_half_of_the_backoff_and_capped() -> None:
    for backoff in (BACKOFF_MIN, 1.0, BACKOFF_MAX, BACKOFF_MAX * 4):
        delays = {reconnect_delay(backoff) for _ in range(200)}
        top = min(backoff, BACKOFF_MAX)
        assert all(top / 2 <= d <= top for d in delays), (backoff, min(delays), max(delays))
        assert len(delays) > 100  # jittered, so that agents cut off together come back apart
