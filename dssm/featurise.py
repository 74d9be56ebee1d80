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
# bytes.translate table: [a-z0-9] kept, every other byte a space; then split() gives ASCII_TOKEN's words
_ASCII_SEPARATORS = bytes(c if chr(c).isascii() and chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789" else 32
                          for c in range(256))
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
        self._rows = _WordRows(self._word_features)  # the batch path's store of the same word ids

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
        """CSR layout of many texts: (ids int32 [total], offsets int64 [n + 1]); text i is ids(texts[i]).

        Vectorised: each distinct word's ids are stored once (a growing CSR store), each text becomes
        the row numbers of its words, and numpy gathers and cuts the id runs of all texts at once.
        ASCII texts are split with bytes.translate, about 2x faster than the regex.
        """
        if self.config.word_ngrams >= 2:       # bigrams interleave with the words: text by text
            sequences = [self.ids(text) for text in texts]
            offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
            np.cumsum([len(seq) for seq in sequences], out=offsets[1:])
            return np.fromiter(chain.from_iterable(sequences), dtype=np.int32, count=int(offsets[-1])), offsets
        words = [self._words(text) for text in texts]
        counts = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        rows = self._rows.rows(chain.from_iterable(words), int(counts.sum()))
        return self._rows.gather(rows, counts, self.config.max_features)

    def _words(self, text: str) -> list:
        """tokenise(text[:max_chars]) with ASCII words as bytes (the batch path's cache keys)."""
        text = normalise(text[:self.config.max_chars])
        if text.isascii():
            return text.encode("ascii").translate(_ASCII_SEPARATORS).split()
        return TOKEN.findall(text)

    def padded(self, texts: Iterable[str], length: int | None = None) -> np.ndarray:
        """Left-aligned ids padded with 0: int32 [n, length] (length defaults to the longest text)."""
        ids, offsets = self.batch(list(texts))
        counts = np.diff(offsets)
        width = length if length is not None else int(counts.max(initial=0))
        out = np.zeros((len(counts), max(width, 1)), dtype=np.int32)
        rows = np.repeat(np.arange(len(counts)), counts)
        columns = np.arange(len(ids)) - np.repeat(offsets[:-1], counts)
        kept = columns < width
        out[rows[kept], columns[kept]] = ids[kept]
        return out


class _WordRows:
    """Word -> row of a growing CSR store of the word's ids: the batch path's word cache.

    Keys are words as str, or as ASCII bytes (the same ids). The store only grows within a batch (the
    index may forget words at its limit, which then get new rows); it starts afresh before a batch once
    it holds _CACHE_LIMIT rows.
    """

    def __init__(self, features) -> None:
        self.features = features
        self.index = _Cache(self._add)
        self._empty()

    def _empty(self) -> None:
        self.index.clear()
        self.starts = np.zeros(0, dtype=np.int64)      # row -> first id in self.ids
        self.lengths = np.zeros(0, dtype=np.int64)     # row -> number of ids
        self.ids = np.zeros(0, dtype=np.int32)
        self.count = 0                                 # rows stored (and flushed or pending)
        self.used = 0                                  # ids flushed to self.ids
        self.new_ids: list[int] = []                   # ids of the rows added since the last flush
        self.new_lengths: list[int] = []

    def rows(self, words: Iterable, count: int) -> np.ndarray:
        """The row of each word: int64 [count], storing the words not seen before."""
        if self.count >= _CACHE_LIMIT:          # start afresh between batches (rows stay valid within one)
            self._empty()
        rows = np.fromiter(map(self.index.__getitem__, words), dtype=np.int64, count=count)
        self._flush()
        return rows

    def _add(self, word) -> int:
        ids = self.features(word.decode("ascii") if isinstance(word, bytes) else word)
        self.new_ids.extend(ids)
        self.new_lengths.append(len(ids))
        self.count += 1
        return self.count - 1

    def _flush(self) -> None:
        """Append the new rows to the numpy store: one copy per batch, capacity doubling as it grows."""
        if not self.new_lengths:
            return
        rows, lengths, ids = self.count - len(self.new_lengths), np.array(self.new_lengths), np.array(self.new_ids)
        used = self.used
        if self.count > len(self.starts):
            self.starts = np.resize(self.starts, 2 * self.count)
            self.lengths = np.resize(self.lengths, 2 * self.count)
        if used + len(ids) > len(self.ids):
            self.ids = np.resize(self.ids, 2 * (used + len(ids)))
        self.starts[rows:self.count] = used + np.cumsum(lengths) - lengths
        self.lengths[rows:self.count] = lengths
        self.ids[used:used + len(ids)] = ids
        self.used += len(ids)
        self.new_ids, self.new_lengths = [], []

    def gather(self, rows: np.ndarray, counts: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
        """Texts of counts[i] words (rows, in order) -> CSR (ids, offsets), each text cut at cap ids."""
        lengths = self.lengths[rows]
        word_ends = np.cumsum(lengths)
        total = int(word_ends[-1]) if len(word_ends) else 0
        # the store position of each output id: +1 within a word's run, a jump to the next run's start
        step = np.ones(total, dtype=np.int64)
        if total:
            starts = self.starts[rows]
            step[0] = starts[0]
            step[(word_ends - lengths)[1:]] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
        source = np.cumsum(step)
        text_ends = np.concatenate([[0], word_ends])[np.cumsum(counts)]
        full = np.diff(text_ends, prepend=0)                       # ids of each text before the cap
        over = np.flatnonzero(full > cap)
        if len(over):
            kept = np.ones(total, dtype=bool)
            for end, length in zip(text_ends[over].tolist(), full[over].tolist()):
                kept[end - length + cap:end] = False
            source = source[kept]
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(np.minimum(full, cap), out=offsets[1:])
        return self.ids[source], offsets


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


def passage_texts(title: str, text: str, window: int, stride: int, limit: int | None = None) -> list[str]:
    """Windows of `window` words every `stride` words of `text`, each after `title`; the last window
    ends at the text's last word; with `limit`, the first `limit` windows only. A text of at most
    `window` words has none: its one window would be the whole document, whose vector is stored already."""
    words = text.split()
    if len(words) <= window:
        return []
    starts = list(range(0, len(words) - window + 1, stride))
    if starts[-1] + window < len(words):
        starts.append(len(words) - window)
    return [" ".join([title, *words[start:start + window]]) if title else " ".join(words[start:start + window])
            for start in starts[:limit]]
