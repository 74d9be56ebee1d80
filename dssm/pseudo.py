"""Pseudo-queries cut from corpus documents: training signal from the corpus a model will serve.

`dssm train --corpus C` learns from the labelled pairs and from (pseudo-query, document) pairs cut from
every document of C; `dssm adapt` learns from them alone, on a new corpus without queries. The
positive is always the whole document, as the index encodes it, so the model learns to find a
document from a piece of it: the inverse cloze task (Lee et al. 2019, "Latent Retrieval for Weakly
Supervised Open Domain Question Answering") with the sentence left in place, which Lee et al. keep in
10% of their pairs so the model also learns word overlap, the strongest signal of a short query.

Kinds (`PSEUDO_KINDS`), each at most one query per document:
- `first-sentence`: the text's first sentence when more text follows (<= 30 words); otherwise its
  first 4-12 words. A description's opening sentence says what the thing is, as a query does.
- `span`: 4-12 consecutive words from a random place of the text.
- `title`: the title, when it is not just the document's id and differs from the text.
No pseudo-query is ever the whole text: a text of fewer than `MIN_WORDS` words gives none.
Deterministic: the same corpus and seed give the same queries.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator

PSEUDO_KINDS = ("first-sentence", "span", "title")
DEFAULT_KINDS = ("first-sentence", "span")
MIN_WORDS = 6                  # shorter texts give no pseudo-query (it would be most of the text)
SPAN_WORDS = (4, 12)           # the length range of spans and of first-words queries
MAX_SENTENCE_WORDS = 30
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


class PseudoQueryError(ValueError):
    """An unknown pseudo-query kind."""


def parse_kinds(spec: str | Iterable[str]) -> tuple[str, ...]:
    """'first-sentence,span' -> ('first-sentence', 'span'); 'none' or '' -> ()."""
    kinds = [part.strip() for part in (spec.split(",") if isinstance(spec, str) else spec) if part.strip()]
    if kinds == ["none"]:
        return ()
    unknown = [kind for kind in kinds if kind not in PSEUDO_KINDS]
    if unknown:
        raise PseudoQueryError(f"unknown pseudo-query kind {unknown[0]!r}; choose from {list(PSEUDO_KINDS)} or none")
    return tuple(dict.fromkeys(kinds))


def _words_query(words: list[str], rng: random.Random, start: int | None = None) -> str:
    length = rng.randint(SPAN_WORDS[0], min(SPAN_WORDS[1], len(words) - 2))
    start = rng.randint(0, len(words) - length) if start is None else start
    return " ".join(words[start:start + length])


def pseudo_queries(doc_id: str, title: str, text: str, kinds: tuple[str, ...], rng: random.Random) -> list[str]:
    """The pseudo-queries of one document, one per kind that applies, in `kinds` order.

    >>> pseudo_queries("d", "", "Tcl bindings to libcurl. It supports HTTP and FTP.", ("first-sentence",),
    ...                random.Random(0))
    ['Tcl bindings to libcurl.']
    """
    words = text.split()
    queries: list[str] = []
    if len(words) < MIN_WORDS:
        return queries
    for kind in kinds:
        if kind == "first-sentence":
            sentences = SENTENCE_END.split(text.strip(), maxsplit=1)
            first = sentences[0].split()
            if len(sentences) > 1 and 3 <= len(first) <= MAX_SENTENCE_WORDS:
                queries.append(" ".join(first))
            else:
                queries.append(_words_query(words, rng, start=0))
        elif kind == "span":
            queries.append(_words_query(words, rng))
        elif kind == "title" and title and title != doc_id and title.strip() != text.strip():
            queries.append(title)
    return queries


def corpus_pseudo_pairs(records: Iterable[tuple[str, str, str]], kinds: tuple[str, ...],
                        seed: int) -> Iterator[tuple[str, int]]:
    """(pseudo-query, document row) for each (id, title, text) record, rows counted in input order."""
    rng = random.Random(seed)
    for row, (doc_id, title, text) in enumerate(records):
        for query in pseudo_queries(doc_id, title or "", text or "", kinds, rng):
            yield query, row
