"""Search: the embedded index (Annoy + BM25 + SQLite + vectors), the Elasticsearch backend, fusion, the hybrid searcher."""
