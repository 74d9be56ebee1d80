"""Tagged texts and tag lists: the inputs of tagging (training, tag indexes, evaluation).

A tagged text is a JSONL line `{"text": ..., "tags": [...]}` (optionally `"id"` and `"title"`, the text
then being `document_text(title, text)` as for documents). A tag list is a text file with one tag per
line, or JSONL `{"tag": ...}`. A tag is embedded as its own string: the featuriser splits
`implemented-in::python` into the words `implemented`, `in`, `python`, so tag names need no cleaning.

Rules (each a one-line error naming the file, line and fix): an empty tag list, a tag repeated in one
record or in a tag list, a tag with no letter or digit (nothing to embed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dssm.data import ReadStats, read_jsonl, read_lines
from dssm.featurise import document_text, tokenise


@dataclass
class TaggedTexts:
    ids: list[str]
    texts: list[str]
    tags: list[list[str]]

    def vocabulary(self) -> list[str]:
        """Every tag used, in order of first use."""
        return list(dict.fromkeys(tag for tags in self.tags for tag in tags))


def check_tag(tag: object, where: str) -> str:
    """The tag stripped; raises ValueError when it is not a string or has nothing to embed."""
    if not isinstance(tag, str):
        raise ValueError(f"{where}: tag {tag!r} is not a string; write tags as JSON strings")
    tag = tag.strip()
    if not tokenise(tag):                 # tokenise normalises first
        raise ValueError(f"{where}: tag {tag!r} has no letter or digit after normalisation, so it cannot be "
                         f"embedded; remove it or rename it")
    return tag


def _check_unique(tags: list[str], where: str) -> None:
    seen: set[str] = set()
    repeated = [tag for tag in tags if tag in seen or seen.add(tag)]
    if repeated:
        raise ValueError(f"{where}: duplicate tags {sorted(set(repeated))[:5]}; list each tag once")


def load_tagged(path: str | Path, stats: ReadStats | None = None) -> TaggedTexts:
    """Read `{"text", "tags"}` JSONL; ids default to the line number."""
    stats = stats or ReadStats()
    ids, texts, tags = [], [], []
    for number, record in enumerate(read_jsonl(path, stats, ("text", "tags")), start=1):
        where = f"{path}:{record.get('id', number)}"
        if not isinstance(record["tags"], list) or not record["tags"]:
            raise ValueError(f"{where}: empty or missing tag list; give \"tags\": [\"...\"] or drop the record")
        record_tags = [check_tag(tag, where) for tag in record["tags"]]
        _check_unique(record_tags, where)
        ids.append(str(record.get("id", number)))
        texts.append(document_text(record.get("title"), record.get("text")))
        tags.append(record_tags)
    if not texts:
        raise ValueError(f"{path}: no tagged texts; give JSONL {{\"text\", \"tags\": [...]}} lines")
    return TaggedTexts(ids, texts, tags)


def read_tag_list(path: str | Path) -> list[str]:
    """Tags from a text file (one per line) or JSONL `{"tag"}` (`.jsonl`/`.json`); no duplicates."""
    stats = ReadStats()
    tags = []
    if str(path).endswith((".jsonl", ".json")):
        for number, record in enumerate(read_jsonl(path, stats, ("tag",)), start=1):
            tags.append(check_tag(record["tag"], f"{path}:{number}"))
    else:
        for number, line in read_lines(path, stats):
            tags.append(check_tag(line, f"{path}:{number}"))
    if not tags:
        raise ValueError(f"{path}: no tags; give one tag per line")
    _check_unique(tags, str(path))
    return tags
