"""Tagging quality (issue 7): P@k / R@k of seen and unseen debtags, restricted and generalised protocols.

    python scripts/make_debtags.py --out runs/debtags        # the data set (seconds)
    python benchmarks/tag_quality.py --model models/debdesc [--model models/search-tags ...] --data runs/debtags [--out benchmarks/out/tags_quality.md]
    python benchmarks/tag_quality.py --model models/demo --data data    # the shipped sample (data/sample_tags_*)

Rows, all scored by indexer/tag_eval.py on the test texts:
- DSSM, tag names: every tag is its name on the document tower (zero-shot for the unseen tags);
- DSSM, one-shot: seen tags by name, each unseen tag the query-tower vector of its one example text;
- DSSM, name + example: each unseen tag the normalised sum of its name's and its example's vectors;
- DSSM, prototypes: each seen tag the normalised mean of its training texts (nearest class mean, no
  training), unseen tags one-shot: what the representation gives when a tag has many examples;
- BM25 of tag names: the tag's words (`implemented in python`) as a BM25 query against the texts;
- prior: tags ranked by training frequency, the same for every text (what the common tags give alone).
Writes the markdown fragment and a JSON beside it. A minute on 2 cores for debdesc-dev's tags.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dssm.export import load_encoder  # noqa: E402
from dssm.tagdata import load_tagged, read_tag_list  # noqa: E402
from indexer.tag_eval import bm25_scorer, cosine_scorer, evaluate_tagging, prior_scorer  # noqa: E402
from indexer.tags import read_tag_examples, tag_vectors  # noqa: E402

DATE = "2026-11-28"
LAYOUTS = [{"train": "tagged_train.jsonl", "test": "tagged_test.jsonl", "seen": "tags_seen.txt",
            "unseen": "tags_unseen.txt", "examples": "tag_examples.jsonl"},
           {"train": "sample_tags_train.jsonl", "test": "sample_tags_test.jsonl", "seen": "sample_tags_seen.txt",
            "unseen": "sample_tags_unseen.txt", "examples": "sample_tag_examples.jsonl"}]


def data_files(directory: Path) -> dict[str, Path]:
    """The five files of make_debtags.py's output (or of data/'s sample) in `directory`."""
    for layout in LAYOUTS:
        if all((directory / name).is_file() for name in layout.values()):
            return {key: directory / name for key, name in layout.items()}
    raise ValueError(f"{directory} lacks the tagging files ({', '.join(LAYOUTS[0].values())}); "
                     "build them with `python scripts/make_debtags.py --out DIR`")


def prototypes(encoder, tags: list[str], train) -> np.ndarray:
    """float32 [len(tags), dim]: the normalised mean query-tower vector of each tag's training texts."""
    vectors = encoder.encode(train.texts, side="query")
    column = {tag: i for i, tag in enumerate(tags)}
    sums = np.zeros((len(tags), encoder.dim), dtype=np.float64)
    for row, record_tags in enumerate(train.tags):
        for tag in record_tags:
            if tag in column:
                sums[column[tag]] += vectors[row]
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0).astype(np.float32)


def systems(encoder, tags: list[str], unseen: list[str], train, examples: dict[str, list[str]]) -> dict:
    """Row name -> scorer over `tags`: the DSSM rows of one model."""
    one_shot = {tag: examples[tag] for tag in unseen if tag in examples}
    by_name = tag_vectors(encoder, tags)
    with_examples = tag_vectors(encoder, tags, one_shot)
    seen_rows = [i for i, tag in enumerate(tags) if tag not in set(unseen)]
    both = by_name + with_examples                      # unseen: name and example, equal weights; seen: name
    both /= np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12)
    prototype = with_examples.copy()
    prototype[seen_rows] = prototypes(encoder, tags, train)[seen_rows]
    return {"DSSM, tag names": cosine_scorer(encoder, by_name),
            "DSSM, one-shot unseen tags": cosine_scorer(encoder, with_examples),
            "DSSM, unseen = name + example": cosine_scorer(encoder, both),
            "DSSM, seen prototypes + one-shot": cosine_scorer(encoder, prototype)}


def baselines(tags: list[str], train) -> dict:
    return {"BM25 of tag names": bm25_scorer(tags), "prior (training frequency)": prior_scorer(tags, train.tags)}


def table(results: dict, protocol: str, k: int) -> list[str]:
    lines = [f"| {protocol} | P@{k} seen | R@{k} seen | P@{k} unseen | R@{k} unseen |", "|---|---|---|---|---|"]
    for name, report in results.items():
        seen, unseen = report[protocol]["seen"], report[protocol]["unseen"]
        lines.append(f"| {name} | {seen[f'P@{k}']:.4f} | {seen[f'R@{k}']:.4f} | "
                     f"{unseen[f'P@{k}']:.4f} | {unseen[f'R@{k}']:.4f} |")
    return lines


def reading(summary: dict) -> list[str]:
    """Best rows and the chance level, computed (the fragment is regenerated, so no hand-written claims)."""
    k, results, sizes = summary["k"], summary["results"], summary["sizes"]
    lines = []
    for protocol in ("restricted", "generalised"):
        best = {kind: max(results, key=lambda name: results[name][protocol][kind][f"R@{k}"])
                for kind in ("seen", "unseen")}
        lines.append(f"- {protocol}: best R@{k} on seen tags `{best['seen']}` "
                     f"({results[best['seen']][protocol]['seen'][f'R@{k}']:.4f}), on unseen tags `{best['unseen']}` "
                     f"({results[best['unseen']][protocol]['unseen'][f'R@{k}']:.4f}).")
    lines.append(f"- Chance: a random ranking of the {sizes['tags_unseen']} unseen tags has R@{k} = "
                 f"{k / sizes['tags_unseen']:.4f} (restricted). The prior gives every unseen tag 0, so its unseen "
                 f"columns are the tie-break by tag name: a chance floor, not a skill.")
    lines.append("- A model trained without tags (search pairs only) treats seen and unseen tags alike: both are "
                 "zero-shot for it; tag training should lift the seen columns, and the unseen ones show whether "
                 "it generalises.")
    return lines


def markdown(summary: dict) -> str:
    k, sizes, results = summary["k"], summary["sizes"], summary["results"]
    any_report = next(iter(results.values()))
    lines = [
        f"Zero-shot tagging on Debian's debtags (`scripts/make_debtags.py`: the `Tag:` field of bookworm main "
        f"amd64 joined with debdesc-dev's long descriptions, split by source package, seed 7). Data "
        f"`{summary['data']}`: {sizes['tags_seen']} seen and {sizes['tags_unseen']} unseen tags (held out of "
        f"training; each with one example text from a training package for one-shot), {sizes['train']} training "
        f"texts, {sizes['test']} test texts, {any_report['restricted']['unseen']['texts']} of them with unseen "
        f"tags. Models: {', '.join(f'`{m}`' for m in summary['models'])} (rows prefixed by the model when "
        f"there are several). Text = query tower, tag name = document tower, score = cosine.",
        "",
        f"Restricted: seen tags ranked among seen tags only, unseen among unseen only. Generalised: all "
        f"{sizes['tags_seen'] + sizes['tags_unseen']} tags ranked together, the top {k} scored against the seen "
        f"and the unseen gold apart. P@{k} / R@{k} by ir-measures (trec_eval), mean over the test texts with "
        f"gold tags of that kind.",
        "", *table(results, "restricted", k), "", *table(results, "generalised", k), "",
        *reading(summary), "",
        f"`{summary['command']}` ({summary['seconds']:.0f} s, {summary['date']}, {summary['machine']}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Tagging quality: P@k/R@k of seen and unseen tags")
    parser.add_argument("--model", type=Path, action="append", help="repeat to compare models (default models/debdesc)")
    parser.add_argument("--data", type=Path, default=ROOT / "runs" / "debtags")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "tags_quality.md")
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        files = data_files(args.data)
        train, test = load_tagged(files["train"]), load_tagged(files["test"])
        seen, unseen = read_tag_list(files["seen"]), read_tag_list(files["unseen"])
        examples = read_tag_examples(files["examples"])
        models = args.model or [ROOT / "models" / "debdesc"]
        tags = seen + unseen
        scorers = {}
        for model in models:
            prefix = f"{display(model)}: " if len(models) > 1 else ""
            encoder = load_encoder(model)
            scorers.update({prefix + name: score for name, score in systems(encoder, tags, unseen, train, examples).items()})
        scorers.update(baselines(tags, train))
        results = {name: evaluate_tagging(score, tags, test.texts, test.tags, unseen, args.k)
                   for name, score in scorers.items()}
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {"models": [display(m) for m in models], "data": display(args.data), "k": args.k, "date": DATE,
               "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, no GPU",
               "command": "python benchmarks/tag_quality.py " + " ".join(sys.argv[1:]),
               "seconds": time.perf_counter() - started,
               "sizes": {"tags_seen": len(seen), "tags_unseen": len(unseen), "train": len(train.texts),
                         "test": len(test.texts)},
               "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(summary), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(markdown(summary))
    return 0


def display(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
