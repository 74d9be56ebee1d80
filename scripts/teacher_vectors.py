"""Teacher vectors for `dssm train --teacher DIR`: all-MiniLM-L6-v2 embeddings of the training queries
and documents, in the order `dssm train` reads them.

    make teacher PAIRS=pairs.jsonl CORPUS=corpus.jsonl OUT=runs/teacher     # or:
    python scripts/teacher_vectors.py --pairs P --corpus C --out DIR [--peers-python .venv-peers/bin/python]

Writes DIR/queries.npy (one unit row per pair of the pairs file, skipped pairs excluded, as training
skips them) and DIR/documents.npy (one per corpus document, title + text as the document tower reads
it). With --pseudo-queries KINDS (and --seed, as `dssm train` gets them) also DIR/pseudo.npy, one row
per corpus pseudo-query in the order training cuts them, and DIR/pseudo.json naming kinds, seed and
count, which `dssm train --teacher DIR --pseudo-queries KINDS` checks before it uses them. MiniLM runs in the separate `.venv-peers` (torch; never a dependency of the project), through
`benchmarks/bench_peers.py encode`. It is slow on CPU: about 25 documents/s and 340 short queries/s
on 2 cores (debdesc-dev's 63k documents: ~40 min), so encode once and keep DIR.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dssm.data import add_pseudo_pairs, load_corpus, load_pairs  # noqa: E402
from dssm.pseudo import parse_kinds  # noqa: E402


def encode(python: str, texts: list[str], out: Path, threads: int) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as handle:
        json.dump(texts, handle, ensure_ascii=False)
    try:
        subprocess.run([python, str(ROOT / "benchmarks" / "bench_peers.py"), "encode", "--texts", handle.name,
                        "--out", str(out), "--repeats", "1", "--threads", str(threads), "--progress"], check=True)
    finally:
        Path(handle.name).unlink()


def encode_once(python: str, texts: list[str], out: Path, threads: int) -> None:
    """encode(), skipped when `out` holds the vectors of these very texts (OUT.sha256 beside it names
    them): the teacher is slow on CPU, so a rerun with more pseudo-queries keeps what it has."""
    stamp = out.with_suffix(".sha256")
    digest = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        print(f"{out}: kept ({len(texts)} texts unchanged)")
        return
    encode(python, texts, out, threads)
    stamp.write_text(digest + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--skip-missing", action="store_true", help="as dssm train --skip-missing")
    parser.add_argument("--peers-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pseudo-queries", default="none", help="as dssm train --pseudo-queries")
    parser.add_argument("--seed", type=int, default=13, help="as dssm train --seed (it draws the pseudo-queries)")
    args = parser.parse_args()
    try:
        if not Path(args.peers_python).is_file():
            raise ValueError(f"{args.peers_python} not found; run `make teacher` (it installs .venv-peers) "
                             "or pass --peers-python")
        kinds = parse_kinds(args.pseudo_queries)
        pairs, corpus = load_pairs(args.pairs, load_corpus(args.corpus), args.skip_missing)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, texts in (("queries", pairs.queries), ("documents", corpus.texts)):
        encode_once(args.peers_python, texts, args.out / f"{name}.npy", args.threads)
    print(f"{args.out}: {len(pairs.queries)} query and {len(corpus.texts)} document vectors")
    if kinds:
        with_pseudo, rows = add_pseudo_pairs(pairs, corpus, kinds, args.seed)
        encode_once(args.peers_python, [with_pseudo.queries[row] for row in rows], args.out / "pseudo.npy", args.threads)
        (args.out / "pseudo.json").write_text(json.dumps({"kinds": list(kinds), "seed": args.seed, "count": len(rows)}))
        print(f"{args.out}: {len(rows)} pseudo-query vectors ({', '.join(kinds)}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
