"""The typo generator: deterministic (seed, text), one edit per eligible word, nothing else touched."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.typos import drop, insert, swap, typo_queries, typo_query

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["Tcl bindings to libcurl", "CPL framework interface library", "Ünïcode Wörter straße", "a b c",
           "convert a camelized string into a lowercased one"]


def one_edit_apart(original: str, typo: str) -> bool:
    """True when `typo` is `original` with one letter dropped, one inserted, or two adjacent ones swapped."""
    if len(typo) == len(original) - 1:
        return any(original[:i] + original[i + 1:] == typo for i in range(len(original)))
    if len(typo) == len(original) + 1:
        return any(typo[:i] + typo[i + 1:] == original for i in range(len(typo)))
    diffs = [i for i in range(len(original)) if original[i] != typo[i]] if len(typo) == len(original) else []
    return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and original[diffs[0]] == typo[diffs[1]] \
        and original[diffs[1]] == typo[diffs[0]]


def test_same_seed_same_typos_different_seed_different_typos():
    assert [typo_query(q, seed=5) for q in QUERIES] == [typo_query(q, seed=5) for q in QUERIES]
    assert [typo_query(q, seed=5) for q in QUERIES] != [typo_query(q, seed=6) for q in QUERIES]


def test_independent_of_order_and_process():
    queries = {str(n): q for n, q in enumerate(QUERIES)}
    forward = typo_queries(queries, seed=3)
    backward = typo_queries(dict(reversed(list(queries.items()))), seed=3)
    assert forward == backward
    code = "import json, sys;  from indexer.typos import typo_query; print(json.dumps([typo_query(q, seed=3) for q in json.loads(sys.argv[1])]))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(QUERIES)], capture_output=True, text=True,
                         cwd=ROOT, env=env, check=True).stdout
    assert json.loads(out) == [forward[str(n)] for n in range(len(QUERIES))]


def test_every_long_word_gets_exactly_one_edit():
    for seed in range(20):
        typo = typo_query("Tcl bindings to libcurl, fast!", seed=seed)
        words = typo.replace(",", " ").replace("!", " ").split()
        assert typo.count(",") == 1 and typo.endswith("!")
        original = ["Tcl", "bindings", "to", "libcurl", "fast"]
        assert [w for w, o in zip(words, original) if len(o) < 4] == ["Tcl", "to"]
        assert all(one_edit_apart(o, w) for w, o in zip(words, original) if len(o) >= 4)


def test_per_query_edits_one_word():
    for seed in range(20):
        words = typo_query("framework interface library", seed=seed, per="query").split()
        changed = [w for w, o in zip(words, ["framework", "interface", "library"]) if w != o]
        assert len(changed) == 1


def test_short_or_empty_queries_are_unchanged():
    assert typo_query("a b c") == "a b c" and typo_query("") == "" and typo_query("C++ / Go") == "C++ / Go"


@pytest.mark.parametrize("edit", [swap, drop, insert])
def test_edits_are_one_edit_apart(edit):
    rng = random.Random(0)
    for word in ["library", "ab", "straße", "aaaa"]:
        assert one_edit_apart(word, edit(word, rng))


def test_swap_of_identical_letters_drops_instead():
    assert swap("aaaa", random.Random(0)) == "aaa"


def test_bad_arguments():
    with pytest.raises(ValueError, match="choose from"):
        typo_query("library", edits=("replace",))
    with pytest.raises(ValueError, match="choose from"):
        typo_query("library", per="sentence")
