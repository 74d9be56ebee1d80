import json
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN

from dssm.config import FeaturiserConfig
from dssm.featurise import Featuriser, fnv1a32, letter_trigrams, normalise, tokenise


def test_letter_trigrams_of_the_paper():
    assert letter_trigrams("good") == ["#go", "goo", "ood", "od#"]
    assert letter_trigrams("a") == ["#a#"]
    assert letter_trigrams("東京") == ["#東京", "東京#"]


def test_fnv1a32_reference_values():
    # Published FNV-1a 32-bit test vectors.
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


def test_normalisation_nfkc_then_casefold():
    assert normalise("Straße") == "strasse"
    assert normalise("ＡＢＣ①") == "abc1"
    assert normalise("ﬁne") == "fine"


def test_tokens_of_any_script_and_separators():
    assert tokenise("Привет, мир! 東京都 x2 हिन्दी 😀 C++") == ["привет", "мир", "東京都", "x2", "हिन्दी", "c"]
    assert tokenise("snake_case") == ["snake", "case"]
    assert tokenise("!!! 😀") == []


def test_ids_are_hash_of_each_trigram():
    featuriser = Featuriser(FeaturiserConfig(buckets=100))
    expected = [1 + fnv1a32(t.encode()) % 100 for t in ["#go", "goo", "ood", "od#"]]
    assert featuriser.ids("Good!") == expected
    assert all(1 <= i <= 100 for i in featuriser.ids("anything at all"))


def test_cap_and_word_ngrams():
    featuriser = Featuriser(FeaturiserConfig(max_features=5, word_ngrams=2))
    ids = featuriser.ids("alpha beta gamma")
    assert len(ids) == 5
    full = Featuriser(FeaturiserConfig(max_features=100, word_ngrams=2)).ids("ab cd")
    trigrams = lambda w: [full_f.key_id(t) for t in letter_trigrams(w)]  # noqa: E731
    full_f = Featuriser(FeaturiserConfig(max_features=100, word_ngrams=2))
    assert full == trigrams("ab") + [full_f.key_id("w:ab")] + trigrams("cd") + [full_f.key_id("w:cd"), full_f.key_id("b:ab cd")]


def test_max_chars_cuts_raw_text():
    featuriser = Featuriser(FeaturiserConfig(max_chars=4, max_features=100))
    assert featuriser.ids("abcdefgh") == featuriser.ids("abcd")


def test_empty_texts_have_no_features():
    featuriser = Featuriser()
    for text in ["", "   ", "!!!", "😀🎉"]:
        assert featuriser.ids(text) == []


def test_batch_and_padded_layouts_agree_with_ids():
    featuriser = Featuriser(FeaturiserConfig(max_features=50))
    texts = ["hello world", "", "Привет"]
    flat, offsets = featuriser.batch(texts)
    padded = featuriser.padded(texts)
    assert offsets.tolist()[0] == 0 and len(offsets) == 4
    for row, text in enumerate(texts):
        ids = featuriser.ids(text)
        assert flat[offsets[row]:offsets[row + 1]].tolist() == ids
        assert padded[row, :len(ids)].tolist() == ids and not padded[row, len(ids):].any()
    assert padded.dtype == np.int32 and padded.shape == (3, max(len(featuriser.ids(t)) for t in texts))


def test_golden_cases_shared_with_java():
    cases = json.loads((GOLDEN / "featurise_cases.json").read_text(encoding="utf-8"))["cases"]
    assert len(cases) >= 60
    for case in cases:
        config = FeaturiserConfig(**case["config"])
        assert Featuriser(config).ids(case["text"]) == case["ids"], case["text"][:40]
        flat, offsets = Featuriser(config).batch(["", case["text"], "x"])          # the vectorised path
        assert flat[offsets[1]:offsets[2]].tolist() == case["ids"], case["text"][:40]


@pytest.mark.parametrize("word_ngrams", [0, 1, 2])
def test_batch_equals_ids_on_real_text_in_any_order(word_ngrams):
    """The vectorised batch path against ids() text by text: the shipped corpus (ASCII and not),
    texts over the cap, empty ones, a warm store across calls, and one that starts afresh."""
    lines = (Path(__file__).resolve().parent.parent / "data" / "sample_corpus.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in lines.splitlines()[:300]]
    texts += ["", "!!!", "Ünïcödé and ASCII", "Привет мир 42", "word " * 500]
    assert any(not text.isascii() for text in texts) and any(len(text) > 2000 for text in texts)
    config = FeaturiserConfig(max_features=128, word_ngrams=word_ngrams)
    reference = Featuriser(config)
    featuriser = Featuriser(config)
    for chunk in (texts, texts[::-1], texts[50:60], texts):
        flat, offsets = featuriser.batch(chunk)
        assert len(offsets) == len(chunk) + 1 and flat.dtype == np.int32
        for row, text in enumerate(chunk):
            assert flat[offsets[row]:offsets[row + 1]].tolist() == reference.ids(text)


def test_batch_store_starts_afresh_at_its_limit(monkeypatch):
    import dssm.featurise

    monkeypatch.setattr(dssm.featurise, "_CACHE_LIMIT", 5)
    featuriser, reference = Featuriser(), Featuriser()
    texts = ["alpha beta gamma delta epsilon zeta eta", "theta alpha iota", "kappa lambda mu beta"]
    for chunk in (texts, texts[1:], texts):
        flat, offsets = featuriser.batch(chunk)
        assert [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(chunk))] == [reference.ids(t) for t in chunk]
    assert featuriser._rows.count <= sum(len(text.split()) for text in texts)   # emptied before the last batch


@pytest.mark.parametrize("field,value", [("buckets", 0), ("max_features", 0), ("word_ngrams", 3)])
def test_invalid_featuriser_config(field, value):
    with pytest.raises(ValueError, match=field):
        FeaturiserConfig(**{field: value})
