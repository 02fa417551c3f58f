"""Scraping a Kraken process's ``/metrics`` in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(url, headers=headers)
    r.raise_for_status()
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def wait_metrics(
    url: str, check: Callable[[Samples], bool], token: str | None = None, timeout: float = 30.0, what: str = ""
) -> Samples:
    """Scrape until ``check`` holds (the database gauges are cached for up to two seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        samples = await scrape(url, token)
        if check(samples):
            return samples
        if loop.time() > deadline:
            raise TimeoutError(f"metrics at {url}: {what} not reached within {timeout}s")
        await asyncio.sleep(0.2)  # polling the endpoint itself: it has no event stream
