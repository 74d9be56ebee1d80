"""The document store: one SQLite table `documents(id, title, text)` inside the index directory.

It keeps what search prints (titles) and what a rebuild needs (texts for BM25 after `index add` /
`index delete`), and updates incrementally inside a transaction. It is opened read-only for search.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from indexer.documents import Document

SCHEMA = "CREATE TABLE documents (id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL) WITHOUT ROWID"
CHUNK = 500  # ids per `IN (...)` query, below SQLite's variable limit


def chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


class DocumentStore:
    """`add`, `delete`, `existing`, `documents(ids)` (in the order asked), `titles(ids)`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    @classmethod
    def create(cls, path: str | Path) -> "DocumentStore":
        path = Path(path)
        if path.exists():
            raise ValueError(f"{path} already exists; a document store is created in a fresh directory")
        connection = sqlite3.connect(path)
        connection.execute(SCHEMA)
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
        self.connection.executemany("DELETE FROM documents WHERE id = ?", ((doc_id,) for doc_id in ids))

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
