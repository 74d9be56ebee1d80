"""Corpus reading: JSONL (`{"id", "title", "text"}`), TSV or CSV (header row with `id`, `text`,
optionally `title`), streamed one document at a time; errors name `file:line` and the fix.

Duplicate ids are found in a first pass (`scan_ids`, ids only) so that the build can refuse them all at
once, listed, before any work, or keep the first or last occurrence (`on_duplicate`).
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dssm.data import decoded_lines
from dssm.featurise import document_text

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".csv": "csv"}
ON_DUPLICATE = ("error", "first", "last")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str

    def encoder_text(self) -> str:
        """What the document tower (and BM25) reads: title then text, as in training."""
        return document_text(self.title, self.text)


class CorpusError(ValueError):
    """A bad corpus line: `path:line: problem; fix`."""


def corpus_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CorpusError(f"{path}: unknown corpus format {path.suffix!r}; use one of {sorted(FORMATS)}")
    return fmt


def document_from_record(record: object, where: str) -> Document:
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected an object with id, title, text, got {type(record).__name__}")
    doc_id, title, text = record.get("id"), record.get("title", ""), record.get("text")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise CorpusError(f"{where}: missing or empty \"id\" (a non-empty string); give every document an id")
    if title is None:
        title = ""
    if not isinstance(title, str) or not isinstance(text, str):
        raise CorpusError(f"{where}: \"title\" and \"text\" must be strings (\"text\" is required) in document {doc_id!r}")
    return Document(doc_id, title, text)


def read_jsonl(path: Path) -> Iterator[tuple[int, Document]]:
    for number, line in enumerate(decoded_lines(path), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusError(f"{where}: not valid JSON ({error.msg}); one JSON object per line") from None
        yield number, document_from_record(record, where)


def read_delimited(path: Path, delimiter: str) -> Iterator[tuple[int, Document]]:
    reader = csv.reader(decoded_lines(path), delimiter=delimiter)
    header = next(reader, None)
    if header is None or "id" not in header or "text" not in header:
        raise CorpusError(f"{path}:1: the header row must name the columns id, text (and optionally title)")
    columns = {name: header.index(name) for name in ("id", "title", "text") if name in header}
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not row:
            continue
        if len(row) != len(header):
            raise CorpusError(f"{where}: {len(row)} fields, the header has {len(header)}; "
                              f"quote fields that contain the delimiter")
        yield reader.line_num, document_from_record({name: row[i] for name, i in columns.items()}, where)


def read_corpus(path: str | Path) -> Iterator[tuple[int, Document]]:
    """Every `(line, Document)` of the corpus in file order (duplicates included)."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"corpus {path} not found; pass a JSONL, TSV or CSV file")
    fmt = corpus_format(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    return read_delimited(path, "\t" if fmt == "tsv" else ",")


def scan_ids(path: str | Path, on_duplicate: str = "error") -> dict[str, int]:
    """First pass: id -> the line of the occurrence to keep; refuses duplicates when on_duplicate='error'."""
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"unknown duplicate policy {on_duplicate!r}; choose from {list(ON_DUPLICATE)}")
    keep: dict[str, int] = {}
    duplicates: dict[str, list[int]] = {}
    for line, doc in read_corpus(path):
        if doc.id in keep:
            duplicates.setdefault(doc.id, [keep[doc.id]]).append(line)
            if on_duplicate == "first":
                continue
        keep[doc.id] = line
    if duplicates and on_duplicate == "error":
        listed = ", ".join(f"{doc_id!r} (lines {', '.join(map(str, lines))})"
                           for doc_id, lines in list(duplicates.items())[:10])
        more = f" and {len(duplicates) - 10} more" if len(duplicates) > 10 else ""
        raise CorpusError(f"{path}: {len(duplicates)} duplicate ids: {listed}{more}; "
                          f"fix the corpus or pass --on-duplicate last (or first)")
    return keep


def iter_documents(path: str | Path, on_duplicate: str = "error", keep: dict[str, int] | None = None) -> Iterator[Document]:
    """Stream the corpus with duplicate ids resolved by `on_duplicate` (two passes over the file;
    pass `keep` from an earlier `scan_ids` to skip the first)."""
    keep = scan_ids(path, on_duplicate) if keep is None else keep
    for line, doc in read_corpus(path):
        if keep[doc.id] == line:
            yield doc
