"""Job logs: where lines are stored, read, streamed and searched (``store.LogStore``).

``database.DatabaseLogStore`` keeps them in the main database (``log_chunk``); the search index
(``log_line`` and its full-text index) is filled beside the write path by ``indexer``.
"""
