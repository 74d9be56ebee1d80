"""DSSM word hashing: text -> letter-trigram ids (Huang et al. 2013, section 3.2).

The exact algorithm is docs/FORMAT.md section 1; the Java plugin reproduces it bit for bit, checked by
the shared golden file tests/golden/featurise_cases.json.

    >>> letter_trigrams("good")
    ['#go', 'goo', 'ood', 'od#']
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from itertools import chain, islice

import numpy as np
import regex

from dssm.config import FeaturiserConfig

TOKEN = regex.compile(r"[\p{L}\p{N}\p{M}]+")
ASCII_TOKEN = re.compile(r"[a-z0-9]+")   # TOKEN on casefolded ASCII text; the stdlib engine is ~1.7x faster
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
BOUNDARY = "#"
_CACHE_LIMIT = 500_000  # words kept in the per-featuriser cache before it is cleared


def normalise(text: str) -> str:
    """Unicode NFKC, then full case folding: 'Straße' -> 'strasse', 'ＡＢＣ' -> 'abc'."""
    return unicodedata.normalize("NFKC", text).casefold()


def tokenise(text: str) -> list[str]:
    """Maximal runs of letters, numbers and marks of any script; everything else separates them."""
    text = normalise(text)
    return ASCII_TOKEN.findall(text) if text.isascii() else TOKEN.findall(text)


def letter_trigrams(word: str) -> list[str]:
    """Trigrams of '#word#', counted in code points: 'a' -> ['#a#']."""
    padded = BOUNDARY + word + BOUNDARY
    return [padded[i:i + 3] for i in range(len(padded) - 2)]


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a hash (Fowler, Noll, Vo), unsigned."""
    value = FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return value


class Featuriser:
    """Maps texts to trigram-id sequences, caching the ids of each distinct word.

    Real text repeats words (Zipf), so hashing each distinct word once makes the pure-Python path
    fast enough for encoding tens of thousands of documents per second.
    """

    def __init__(self, config: FeaturiserConfig | None = None) -> None:
        self.config = config or FeaturiserConfig()
        self._word_ids = _Cache(self._word_features)
        self._key_ids = _Cache(self.key_id)          # trigrams recur across words: hash each once

    def key_id(self, key: str) -> int:
        """The id of one trigram or word key: 1 + fnv1a32(utf8(key)) mod buckets."""
        return 1 + fnv1a32(key.encode("utf-8")) % self.config.buckets

    def _word_features(self, word: str) -> tuple[int, ...]:
        ids = tuple(map(self._key_ids.__getitem__, letter_trigrams(word)))
        if self.config.word_ngrams >= 1:
            ids += (self.key_id("w:" + word),)
        return ids

    def ids(self, text: str) -> list[int]:
        """The id sequence of one text (FORMAT.md section 1), at most max_features long."""
        config = self.config
        words = tokenise(text[:config.max_chars])
        if config.word_ngrams < 2:       # each word's cached ids in order, cut at max_features
            return list(islice(chain.from_iterable(map(self._word_ids.__getitem__, words)), config.max_features))
        ids: list[int] = []
        previous = None
        for word in words:
            ids.extend(self._word_ids[word])
            if config.word_ngrams >= 2 and previous is not None:
                ids.append(self.key_id("b:" + previous + " " + word))
            if len(ids) >= config.max_features:
                break
            previous = word
        return ids[:config.max_features]

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """CSR layout of many texts: (ids int32 [total], offsets int64 [n + 1])."""
        sequences = [self.ids(text) for text in texts]
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum([len(seq) for seq in sequences], out=offsets[1:])
        flat = np.fromiter(chain.from_iterable(sequences), dtype=np.int32, count=int(offsets[-1]))
        return flat, offsets

    def padded(self, texts: Iterable[str], length: int | None = None) -> np.ndarray:
        """Left-aligned ids padded with 0: int32 [n, length] (length defaults to the longest text)."""
        sequences = [self.ids(text) for text in texts]
        width = length if length is not None else max((len(seq) for seq in sequences), default=0)
        out = np.zeros((len(sequences), max(width, 1)), dtype=np.int32)
        for row, seq in enumerate(sequences):
            seq = seq[:width]
            out[row, :len(seq)] = seq
        return out


class _Cache(dict):
    """key -> compute(key), computed on first use; cleared when it reaches _CACHE_LIMIT keys."""

    def __init__(self, compute) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: str):
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        value = self[key] = self.compute(key)
        return value


def document_text(title: str | None, text: str | None) -> str:
    """The text a document is encoded from: its title, then its body (training and indexing agree)."""
    return " ".join(part for part in (title, text) if part)
