"""An out-of-domain retrieval set from the Python standard library's docstrings (no download).

    .venv/bin/python scripts/make_pydoc.py --out runs/pydoc      # corpus.jsonl, queries.jsonl, qrels.tsv

Each documented function, class and method of the standard library that this Python ships becomes one
document: its qualified name as title, its docstring without the first paragraph as text. The first
paragraph (the summary line, "Return the number of items...") becomes the query, so the set asks
"find the API that does X" over another kind of technical text than Debian's package descriptions.
Only docstrings whose summary has 4-30 words and whose remaining text has at least 12 words are kept;
duplicated texts (aliases, inherited docstrings) are kept once; a fixed seeded sample of `--queries`
summaries are the queries, and every document, queried or not, is in the corpus.
Deterministic for a given Python version (recorded in the output's README).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import random
import sys
import warnings
from pathlib import Path

SKIP = ("test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip", "venv", "antigravity", "this",
        "__main__", "pydoc_data", "xxsubtype", "_")


def modules() -> list[str]:
    names = sorted(set(sys.stdlib_module_names))
    return [name for name in names if not name.startswith(SKIP)]


def split_docstring(doc: str) -> tuple[str, str] | None:
    paragraphs = [" ".join(part.split()) for part in inspect.cleandoc(doc).split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    if len(paragraphs) < 2:
        return None
    summary, rest = paragraphs[0], " ".join(paragraphs[1:])
    if not 4 <= len(summary.split()) <= 30 or len(rest.split()) < 12:
        return None
    return summary, rest


def collect() -> list[dict]:
    records, seen = [], set()
    warnings.simplefilter("ignore")
    for module_name in modules():
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - platform-specific modules
            continue
        members = [(module_name, module)]
        for name, value in sorted(vars(module).items()):
            if name.startswith("_") or getattr(value, "__module__", module_name) != module_name:
                continue
            if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
                members.append((f"{module_name}.{name}", value))
                if inspect.isclass(value):
                    members += [(f"{module_name}.{name}.{attr}", member) for attr, member in sorted(vars(value).items())
                                if not attr.startswith("_") and (inspect.isfunction(member) or inspect.ismethoddescriptor(member))]
        for qualified, value in members:
            doc = getattr(value, "__doc__", None)
            parts = split_docstring(doc) if isinstance(doc, str) else None
            if parts is None or parts[1] in seen:
                continue
            seen.add(parts[1])
            records.append({"id": qualified, "title": qualified, "summary": parts[0], "text": parts[1]})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    records = collect()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"id": record["id"], "title": record["title"], "text": record["text"]}) + "\n")
    chosen = sorted(random.Random(args.seed).sample(range(len(records)), min(args.queries, len(records))))
    with open(args.out / "queries.jsonl", "w", encoding="utf-8") as queries, \
            open(args.out / "qrels.tsv", "w", encoding="utf-8") as qrels:
        for number, row in enumerate(chosen, start=1):
            qid = f"p{number:05d}"
            queries.write(json.dumps({"qid": qid, "query": records[row]["summary"]}) + "\n")
            qrels.write(f"{qid}\t{records[row]['id']}\t1\n")
    (args.out / "README.md").write_text(
        f"Made by scripts/make_pydoc.py from Python {sys.version.split()[0]}'s standard library: "
        f"{len(records)} documents, {len(chosen)} queries (seed {args.seed}).\n", encoding="utf-8")
    print(f"{args.out}: {len(records)} documents, {len(chosen)} queries")


if __name__ == "__main__":
    main()
