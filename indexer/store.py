"""The document store: SQLite tables `documents(id, title, text)` and `tags(id, tag, similarity)`
inside the index directory.

It keeps what search prints (titles, tags) and what a rebuild needs (texts for BM25 after `index add` /
`index delete`), and updates incrementally inside a transaction. It is opened read-only for search.
`tags` holds the tags predicted for each document by `dssm index build --with-tags` (indexer/tags.py);
an index built before tagging existed has no such table and reads as having no tags.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from indexer.documents import Document

SCHEMA = "CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL) WITHOUT ROWID"
TAGS_SCHEMA = ("CREATE TABLE IF NOT EXISTS tags (id TEXT NOT NULL, tag TEXT NOT NULL, similarity REAL NOT NULL, "
               "PRIMARY KEY (id, tag)) WITHOUT ROWID", "CREATE INDEX IF NOT EXISTS tags_by_tag ON tags(tag)")
CHUNK = 500  # ids per `IN (...)` query, below SQLite's variable limit


def chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


class DocumentStore:
    """`add`, `delete`, `existing`, `documents(ids)` (in the order asked), `titles(ids)`; tags:
    `add_tags`, `tags(ids)`, `ids_with_tags(tags)`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    @classmethod
    def create(cls, path: str | Path) -> "DocumentStore":
        path = Path(path)
        if path.exists():
            raise ValueError(f"{path} already exists; a document store is created in a fresh directory")
        connection = sqlite3.connect(path)
        connection.execute(SCHEMA)
        for statement in TAGS_SCHEMA:
            connection.execute(statement)
        return cls(connection)

    @classmethod
    def open(cls, path: str | Path, readonly: bool = True) -> "DocumentStore":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"document store {path} is missing; rebuild with `dssm index build`")
        uri = path.resolve().as_uri() + ("?mode=ro" if readonly else "?mode=rw")
        return cls(sqlite3.connect(uri, uri=True, check_same_thread=False))

    def close(self) -> None:
        self.connection.close()

    def __len__(self) -> int:
        return self.connection.execute("SELECT count(*) FROM documents").fetchone()[0]

    def add(self, documents: Iterable[Document], replace: bool = False) -> None:
        """Insert documents (commit with `commit()`); an existing id is an error unless `replace`."""
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        rows = ((doc.id, doc.title, doc.text) for doc in documents)
        try:
            self.connection.executemany(f"{verb} INTO documents(id, title, text) VALUES (?, ?, ?)", rows)
        except sqlite3.IntegrityError as error:
            raise ValueError(f"document id already in the index ({error}); pass --on-duplicate last to replace it") from None

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        self.connection.executemany("DELETE FROM documents WHERE id = ?", ((doc_id,) for doc_id in ids))
        if self.has_tags_table():
            self.connection.executemany("DELETE FROM tags WHERE id = ?", ((doc_id,) for doc_id in ids))

    def has_tags_table(self) -> bool:
        return self.connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tags'").fetchone() is not None

    def add_tags(self, tagged: Iterable[tuple[str, list[tuple[str, float]]]]) -> None:
        """Store `(document id, [(tag, similarity), ...])` (replacing that document's tags)."""
        if not self.has_tags_table():  # an index built before tagging existed
            for statement in TAGS_SCHEMA:
                self.connection.execute(statement)
        for doc_id, tags in tagged:
            self.connection.execute("DELETE FROM tags WHERE id = ?", (doc_id,))
            self.connection.executemany("INSERT INTO tags(id, tag, similarity) VALUES (?, ?, ?)",
                                        ((doc_id, tag, similarity) for tag, similarity in tags))

    def tags(self, ids: Iterable[str]) -> dict[str, list[tuple[str, float]]]:
        """Document id -> its tags, best first (ids without tags are absent)."""
        found: dict[str, list[tuple[str, float]]] = {}
        if not self.has_tags_table():
            return found
        for chunk in chunks(list(ids)):
            sql = (f"SELECT id, tag, similarity FROM tags WHERE id IN ({','.join('?' * len(chunk))}) "
                   f"ORDER BY similarity DESC, tag")
            for doc_id, tag, similarity in self.connection.execute(sql, chunk):
                found.setdefault(doc_id, []).append((tag, similarity))
        return found

    def ids_with_tags(self, tags: Iterable[str]) -> set[str]:
        """Ids of the documents carrying every one of `tags`."""
        tags = list(dict.fromkeys(tags))
        if not tags or not self.has_tags_table():
            return set()
        sql = (f"SELECT id FROM tags WHERE tag IN ({','.join('?' * len(tags))}) "
               f"GROUP BY id HAVING count(*) = {len(tags)}")
        return {row[0] for row in self.connection.execute(sql, tags)}

    def commit(self) -> None:
        self.connection.commit()

    def existing(self, ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(ids)):
            sql = f"SELECT id FROM documents WHERE id IN ({','.join('?' * len(chunk))})"
            found.update(row[0] for row in self.connection.execute(sql, chunk))
        return found

    def documents(self, ids: Iterable[str]) -> Iterator[Document]:
        """The documents with these ids, in the order given (unknown ids are skipped)."""
        for chunk in chunks(list(ids)):
            sql = f"SELECT id, title, text FROM documents WHERE id IN ({','.join('?' * len(chunk))})"
            found = {row[0]: Document(*row) for row in self.connection.execute(sql, chunk)}
            yield from (found[doc_id] for doc_id in chunk if doc_id in found)

    def titles(self, ids: Iterable[str]) -> dict[str, str]:
        return {doc.id: doc.title for doc in self.documents(ids)}
