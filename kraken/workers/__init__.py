"""Background tasks: run in-process by ``kraken serve``, through arq by ``kraken worker``."""
