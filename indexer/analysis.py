"""Lexical analysis for BM25: the featuriser's tokens, stop words removed, Snowball stems.

    >>> analyzer("english").analyze("Running the fonts of libraries")
    ['run', 'font', 'librari']

One analyzer per index, chosen at build time (`dssm index build --analyzer`, default `english`) and
recorded in the manifest's `bm25.analyzer`; documents and queries always go through the same one, and
an index built before analyzers existed reads as `simple`. The steps are docs/FORMAT.md section 5:
1. tokens: NFKC, full case folding, maximal runs of letters, numbers and marks (`dssm.featurise.tokenise`,
   the same words the DSSM hashes, so `C++`, quotes or `AND` are plain text, never syntax);
2. stop words: dropped when in the analyzer's list (`indexer/stopwords/*.txt`, the lists Lucene's
   English and Russian analyzers use: Elasticsearch's `_english_`, Snowball's Russian list);
3. stemming: the Snowball algorithm of the language (Porter 2001), run by PyStemmer, the C build of
   the Snowball project's own code; Lucene's `SnowballFilter` runs the same algorithms, so the
   Elasticsearch plugin's `dssm_english`/`dssm_russian` analyzers give the same terms
   (tests/golden/analysis_cases.json, checked in Python and Java).

On debdesc-dev (1,188 dev queries, 63k documents) stemming lifts BM25's nDCG@10 from 0.687 (`simple`)
to 0.724 (`english`); bm25s with its own tokeniser, the same stemmer and stop words reaches 0.712
(BENCHMARKS.md, "Lexical analysis").
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from dssm.featurise import tokenise

DEFAULT_ANALYZER = "english"
# analyzer name -> (Snowball algorithm or None, stop-word list file or None)
ANALYZERS = {
    "simple": (None, None),
    "english": ("english", "english.txt"),
    "russian": ("russian", "russian.txt"),
}
LEGACY_ANALYZER = "simple"  # what an index built before analyzers were recorded used


class AnalyzerError(ValueError):
    """An unknown analyzer name, or an index analysed differently from what was asked."""


def stop_words(filename: str) -> frozenset[str]:
    """The words of a packaged list: one a line, `#` comments (whitespace-separated words all count)."""
    text = resources.files("indexer").joinpath("stopwords", filename).read_text(encoding="utf-8")
    return frozenset(word for line in text.splitlines() for word in line.split("#", 1)[0].split())


@dataclass(frozen=True)
class Analyzer:
    """`analyze(text) -> terms`: tokens, minus stop words, stemmed (docs/FORMAT.md section 5)."""

    name: str
    language: str | None = None
    stopwords: frozenset[str] = frozenset()
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    def stemmer(self):
        """A PyStemmer stemmer for this thread (a Stemmer object must not be shared between threads)."""
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer
            stemmer = self._local.stemmer = Stemmer.Stemmer(self.language, 100_000)
        return stemmer

    def analyze(self, text: str) -> list[str]:
        tokens = tokenise(text)
        if self.stopwords:
            tokens = [token for token in tokens if token not in self.stopwords]
        if self.language is None or not tokens:
            return tokens
        return self.stemmer().stemWords(tokens)

    def describe(self) -> dict:
        return {"name": self.name, "stemmer": self.language, "stopwords": len(self.stopwords)}


@lru_cache(maxsize=None)
def analyzer(name: str) -> Analyzer:
    """The analyzer called `name`; an unknown name is refused with the choices."""
    if name not in ANALYZERS:
        raise AnalyzerError(f"unknown analyzer {name!r}; choose from {sorted(ANALYZERS)}")
    language, stop_file = ANALYZERS[name]
    return Analyzer(name, language, stop_words(stop_file) if stop_file else frozenset())


def index_analyzer(bm25_section: dict) -> Analyzer:
    """The analyzer an index's BM25 was built with (manifest `bm25.analyzer`; `simple` when absent)."""
    return analyzer(bm25_section.get("analyzer", LEGACY_ANALYZER))


def check_analyzer(bm25_section: dict, wanted: str | None, index_dir) -> None:
    """Refuse to update an index with another analyzer than the one its BM25 was built with."""
    built = bm25_section.get("analyzer", LEGACY_ANALYZER)
    if wanted is not None and wanted != built:
        raise AnalyzerError(f"index {index_dir} was analysed with {built!r}, not {wanted!r}; rebuild it with "
                            f"`dssm index build --analyzer {wanted}` or leave the analyzer as it is")
