"""Test results and linter issues: collection (agent side), ingestion, analysis and the API's queries.

Agent-side modules (``statuses``, ``parsers``, ``collect``) import nothing from the server so
that an agent can use them without a database driver.
"""
