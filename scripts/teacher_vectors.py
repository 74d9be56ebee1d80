"""Teacher vectors for `dssm train --teacher DIR`: all-MiniLM-L6-v2 embeddings of the training queries
and documents, in the order `dssm train` reads them.

    make teacher PAIRS=pairs.jsonl CORPUS=corpus.jsonl OUT=runs/teacher     # or:
    python scripts/teacher_vectors.py --pairs P --corpus C --out DIR [--peers-python .venv-peers/bin/python]

Writes DIR/queries.npy (one unit row per pair of the pairs file, skipped pairs excluded, as training
skips them) and DIR/documents.npy (one per corpus document, title + text as the document tower reads
it). MiniLM runs in the separate `.venv-peers` (torch; never a dependency of the project), through
`benchmarks/bench_peers.py encode`. It is slow on CPU: about 25 documents/s and 340 short queries/s
on 2 cores (debdesc-dev's 63k documents: ~40 min), so encode once and keep DIR.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dssm.data import load_corpus, load_pairs  # noqa: E402


def encode(python: str, texts: list[str], out: Path, threads: int) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as handle:
        json.dump(texts, handle, ensure_ascii=False)
    try:
        subprocess.run([python, str(ROOT / "benchmarks" / "bench_peers.py"), "encode", "--texts", handle.name,
                        "--out", str(out), "--repeats", "1", "--threads", str(threads), "--progress"], check=True)
    finally:
        Path(handle.name).unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--skip-missing", action="store_true", help="as dssm train --skip-missing")
    parser.add_argument("--peers-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    try:
        if not Path(args.peers_python).is_file():
            raise ValueError(f"{args.peers_python} not found; run `make teacher` (it installs .venv-peers) "
                             "or pass --peers-python")
        pairs, corpus = load_pairs(args.pairs, load_corpus(args.corpus), args.skip_missing)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    encode(args.peers_python, pairs.queries, args.out / "queries.npy", args.threads)
    encode(args.peers_python, corpus.texts, args.out / "documents.npy", args.threads)
    print(f"{args.out}: {len(pairs.queries)} query and {len(corpus.texts)} document vectors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
