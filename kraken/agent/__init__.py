"""The build-machine side: websocket client, job runner, executors and tools."""
