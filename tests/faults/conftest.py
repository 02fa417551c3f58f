"""The fault tests use the end-to-end fixtures: a real ``kraken serve`` on each database and a
logged-in API client."""

from tests.e2e.conftest import api, server

__all__ = ["api", "server"]
