"""Observability: Prometheus metrics (``metrics.py``), their HTTP endpoint (``endpoint.py``),
the database-derived gauges computed at scrape time (``gauges.py``) and the event-loop lag
probe (``looplag.py``)."""
