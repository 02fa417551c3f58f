"""API request and response shapes (separate from the ORM tables in ``kraken.models``)."""
