"""Shared fixtures: tiny deterministic models and data; Elasticsearch fixtures live in es_fixtures.py."""
from __future__ import annotations
