"""Regenerate the cross-language golden files in tests/golden/ (`make golden`).

- featurise_cases.json: texts -> trigram ids under two featuriser configs (Python and Java must agree);
- tiny_model/: a small exported model (random but fixed weights), FORMAT.md section 2;
- query_vectors.json: texts -> query and document vectors of tiny_model (numpy encoder);
- passage_cases.json: (title, text, W:S[:N]) -> passage texts (indexer/passages.py; the plugin's
  dssm_embed processor cuts the same windows);
- analysis_cases.json: (analyzer, text) -> BM25 terms (indexer/analysis.py; the plugin's dssm_english,
  dssm_russian and dssm_simple Elasticsearch analyzers give the same terms).
Only regenerate after an intended format change (then bump format_version).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from dssm.config import FeaturiserConfig, TowerConfig
from dssm.export import load_encoder, random_weights, save_model
from dssm.featurise import Featuriser
from indexer.analysis import ANALYZERS, analyzer
from indexer.passages import parse_passages, passage_texts

GOLDEN = Path(__file__).resolve().parent / "golden"

TEXTS = [
    "", " ", "good", "Good", "a", "ab", "hello world", "Hello, World!", "  many   spaces\tand\ttabs\n",
    "Straße", "STRASSE", "İstanbul", "ΣΊΣΥΦΟΣ", "Привет, мир!", "Ёлка и ёж", "Україна",
    "東京都の天気", "北京 上海", "한국어 텍스트", "日本語とEnglishの混在", "عربى النص", "עברית",
    "हिन्दी भाषा", "ไทย ภาษา", "café naïve résumé", "cafe\u0301 (combining accent)", "ﬁne ﬂour (ligatures)",
    "ＦＵＬＬＷＩＤＴＨ １２３", "x² ½ ⅷ", "3d 2023 v1.2.3 42", "C++ & C# (NEAR) foo* \"quoted\"",
    "e-mail: user@example.org, https://debian.org/", "😀🎉👍", "emoji 😀 between 🎉 words", "!!!???...",
    "snake_case under_score", "tab\tseparated\tvalues", "Ω ohm sign and ℃", "\u00a0non\u00a0breaking",
    "zero\u200bwidth\u200bspace", "Ǆemal ǅ ǆ titlecase", "ß ẞ ﬀ", "𝐀𝐁𝐂 mathematical bold",
    "x" * 10000,
    ("The quick brown fox jumps over the lazy dog. " * 250)[:10000],
]

CONFIGS = {
    "default": FeaturiserConfig(),
    "small_word_ngrams": FeaturiserConfig(buckets=1000, max_features=64, max_chars=300, word_ngrams=2),
}

TINY_FEATURISER = FeaturiserConfig(buckets=1024, max_features=128)
TINY_TOWER = TowerConfig(layers=(16, 16, 8))


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, config in CONFIGS.items():
        featuriser = Featuriser(config)
        for text in TEXTS:
            cases.append({"config_name": name, "config": asdict(config), "text": text, "ids": featuriser.ids(text)})
    write(GOLDEN / "featurise_cases.json", {"note": __doc__.splitlines()[0], "cases": cases})

    model_dir = GOLDEN / "tiny_model"
    shutil.rmtree(model_dir, ignore_errors=True)
    save_model(model_dir, TINY_FEATURISER, TINY_TOWER, random_weights(TINY_FEATURISER, TINY_TOWER, seed=2013))
    encoder = load_encoder(model_dir)
    queries = encoder.encode(TEXTS, side="query")
    documents = encoder.encode(TEXTS, side="document")
    write(GOLDEN / "query_vectors.json", {
        "model": "tiny_model", "fingerprint": encoder.fingerprint,
        "cases": [{"text": t, "query": q.tolist(), "document": d.tolist()} for t, q, d in zip(TEXTS, queries, documents)]})
    write(GOLDEN / "passage_cases.json", {"note": "indexer/passages.py passage_texts", "cases": passage_cases()})
    write_analysis_cases()


ANALYSIS_TEXTS = [
    "The quick brown foxes are jumping over the lazy dogs",
    "Running runners ran; libraries, generalization, organizational hopefulness",
    "Utilities for the management of Debian packages (and their dependencies)",
    "It's the user's choice: don't, won't, can't",
    "C++ bindings to libcurl 7.88 for Tcl/Tk, version 2.0-beta",
    "Fonts, FONTS and fonting; the caresses and ponies were agreed",
    "Straße STRASSE naïve café résumé ﬁne",
    "Привет, мир! Это быстрые тесты для поиска и стемминга русских слов",
    "Библиотеки, программы и утилиты для работы с базами данных",
    "Ёлка, ёжики и её объявления; красивейший, красивее, красивые",
    "日本語 の テキスト 😀 emoji 🎉 words x² ½",
    "", "!!!???", "a an and the of", "и в во не что",
    " ".join(f"w{n}" for n in range(40)),
]


def write_analysis_cases() -> None:
    cases = [{"analyzer": name, "text": text, "terms": analyzer(name).analyze(text)}
             for name in sorted(ANALYZERS) for text in ANALYSIS_TEXTS]
    write(GOLDEN / "analysis_cases.json", {"note": "indexer/analysis.py Analyzer.analyze", "cases": cases})


PASSAGE_SPECS = ["2:1", "3:2", "4:4", "4:3:2", "12:6:2", "5:2:1"]
PASSAGE_TEXTS = [
    "", "one", "one two three", "one two three four five six seven",
    "  leading\tand trailing\n  spaces  ",
    "Python splits on\u00a0no-break\u2007figure\u202fnarrow\u3000ideographic\u2028line\x1cfile\x85next spaces",
    "but\u200bnot\u200bzero\u200bwidth or\ufeffBOM",
    "Привет мир, это тест окон по словам для Python и Java",
    "日本語 の テキスト 😀 emoji 🎉 words x² ½",
    " ".join(f"w{n}" for n in range(31)),
]


def passage_cases() -> list[dict]:
    return [{"title": title, "text": text, "passages": spec,
             "expected": passage_texts(title, text, **parse_passages(spec))}
            for spec in PASSAGE_SPECS for title in ("", "Title T") for text in PASSAGE_TEXTS]


def write(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
