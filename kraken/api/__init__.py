"""The REST API (FastAPI), the agents' websocket endpoint and the live streams."""
