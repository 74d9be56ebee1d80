"""`make bench`: run the benchmarks that fit this machine and assemble BENCHMARKS.md.

Each benchmark writes a markdown fragment to benchmarks/out/<name>.md; fragments of longer runs made
by hand (quality on debdesc-dev, the negative-strategy ablation: benchmarks/README.md) are kept and
included when present. BENCHMARKS.md = header (machine, date) + the fragments in SECTIONS order.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"

# (fragment, title, command to refresh it or None for fragments made by longer runs)
SECTIONS = [
    ("core", "DSSM core throughput", [sys.executable, "benchmarks/bench_core.py"]),
    ("training", "DSSM training runs on debdesc-dev", None),
    ("gpu", "Training throughput on an accelerator (KERAS_BACKEND=jax)", None),
    ("quality", "Retrieval quality on debdesc-dev (dev queries)", [sys.executable, "benchmarks/bench_quality.py"]),
    ("ablation", "Negative-strategy ablation (debdesc-dev)", None),
    ("search", "Embedded index and hybrid search", [sys.executable, "benchmarks/bench_search.py"]),
    ("es", "Elasticsearch backend", [sys.executable, "benchmarks/bench_es.py"]),
    ("plugin", "Elasticsearch plugin endpoint", [sys.executable, "benchmarks/bench_plugin.py"]),
]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    for name, _, command in SECTIONS:
        if command is None or (only and name not in only) or not (ROOT / command[1]).exists():
            continue
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        result = subprocess.run(command, cwd=ROOT)
        if result.returncode != 0:
            print(f"   {name} failed (exit {result.returncode}); its previous fragment, if any, is kept")
    parts = ["# Benchmarks", "",
             f"Assembled by `make bench` on {datetime.date.today().isoformat()}. Machine: {machine()}.",
             "Each section states its own data, date of measurement where it differs, and goal. Medians of",
             "repeated runs in one process unless stated otherwise.", ""]
    for name, title, _ in SECTIONS:
        fragment = OUT / f"{name}.md"
        parts += [f"## {title}", "", fragment.read_text().strip() if fragment.exists() else "_not measured yet_", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(parts) + "\n")
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
