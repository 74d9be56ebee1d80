"""Deterministic typos for robustness tests: one edit (swap, drop or insert a letter) per word.

    typo_query("Tcl bindings to libcurl", seed=0)   # same text, seed and rules -> the same typos
    typo_query("Tcl bindings to libcurl", per="query")  # one edit in one word of the query
Words are runs of letters (`\\p{L}`); those shorter than `min_length` (4: "to", "of", "Tcl") are kept,
because one edit in a 2-3 letter word makes another word rather than a typo. The edit and its position
come from `random.Random(f"{seed}:{query}")`, seeded by a string (SHA-512 of it), so the typos do not
depend on the process, the platform or the order in which queries are processed.

- swap: exchange two adjacent letters that differ ("library" -> "lbirary"); a word whose letters are
  all equal gets a drop instead;
- drop: remove one letter ("library" -> "libary");
- insert: add a random lowercase ASCII letter at a random position ("library" -> "libxrary").
"""
from __future__ import annotations

import random
import string

import regex

EDITS = ("swap", "drop", "insert")
PER = ("word", "query")  # an edit in every long-enough word, or in one of them
MIN_LENGTH = 4
DEFAULT_SEED = 13
WORD = regex.compile(r"\p{L}+")


def swap(word: str, rng: random.Random) -> str:
    """Exchange letters i and i+1 for a random i where they differ; drop() when none differ."""
    positions = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    if not positions:
        return drop(word, rng)
    i = rng.choice(positions)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def drop(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    return word[:i] + word[i + 1:]


def insert(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) + 1)
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i:]


EDIT_FUNCTIONS = {"swap": swap, "drop": drop, "insert": insert}


def check_edits(edits: tuple[str, ...]) -> None:
    unknown = [edit for edit in edits if edit not in EDIT_FUNCTIONS]
    if unknown or not edits:
        raise ValueError(f"unknown typo edits {unknown or list(edits)}; choose from {list(EDITS)}")


def typo_word(word: str, rng: random.Random, edits: tuple[str, ...] = EDITS) -> str:
    """One edit, chosen uniformly from `edits`, at a random position of `word`."""
    return EDIT_FUNCTIONS[rng.choice(edits)](word, rng)


def typo_query(query: str, seed: int = DEFAULT_SEED, min_length: int = MIN_LENGTH,
               edits: tuple[str, ...] = EDITS, per: str = "word") -> str:
    """`query` with one edit in every word of at least `min_length` letters (`per="word"`), or in one
    such word chosen at random (`per="query"`); everything else is unchanged."""
    check_edits(edits)
    if per not in PER:
        raise ValueError(f"unknown typo rate per {per!r}; choose from {list(PER)}")
    rng = random.Random(f"{seed}:{query}")
    eligible = [match.start() for match in WORD.finditer(query) if len(match.group()) >= min_length]
    chosen = set(eligible) if per == "word" else set(rng.sample(eligible, min(1, len(eligible))))
    return WORD.sub(lambda match: typo_word(match.group(), rng, edits) if match.start() in chosen
                    else match.group(), query)


def typo_queries(queries: dict[str, str], seed: int = DEFAULT_SEED, min_length: int = MIN_LENGTH,
                 edits: tuple[str, ...] = EDITS, per: str = "word") -> dict[str, str]:
    """`{qid: typo_query(text)}` for every query, in the same order."""
    return {qid: typo_query(text, seed, min_length, edits, per) for qid, text in queries.items()}
