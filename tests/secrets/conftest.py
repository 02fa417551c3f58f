from tests.e2e.conftest import api, server

__all__ = ["api", "server"]
