"""The log store's settings are refused at start when incomplete, or given to a store that does
not use them, naming the setting; the log format takes two values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kraken.core.config import Settings


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"logs_store": "opensearch"}, "opensearch_url: needed by logs_store=opensearch"),
        ({"logs_store": "opensearch", "opensearch_url": "localhost:9200"}, "not an http:// or https:// URL"),
        ({"opensearch_url": "http://127.0.0.1:9200"}, "opensearch_url: used only with logs_store=opensearch"),
        ({"opensearch_retention_months": 6}, "opensearch_retention_months: used only with"),
        ({"logs_store": "elastic"}, "logs_store"),
        ({"logs_store": "opensearch", "opensearch_url": "http://x:9200", "opensearch_index_prefix": "Logs"}, "prefix"),
        ({"log_format": "xml"}, "log_format"),
    ],
)
def test_wrong_settings_are_refused(given: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**given)  # type: ignore[arg-type]


def test_opensearch_settings_are_taken() -> None:
    s = Settings(logs_store="opensearch", opensearch_url="http://127.0.0.1:9200", opensearch_retention_months=6)
    assert (s.logs_store, s.opensearch_retention_months, s.opensearch_keep_hours) == ("opensearch", 6, 24.0)
