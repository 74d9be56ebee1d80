"""Search: embedded index (Annoy + SQLite FTS5), Elasticsearch backend, fusion, the hybrid searcher."""
