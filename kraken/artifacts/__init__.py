"""Artifacts and the build cache: storage, HTTP routes, retention; ``paths`` is shared with the agent."""
