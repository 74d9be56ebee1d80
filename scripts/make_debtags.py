"""Build the zero-shot tagging data set (issue 7) from Debian's debtags and the debdesc-dev corpus.

    python scripts/make_debtags.py --out runs/debtags                      # the full data set
    python scripts/make_debtags.py --corpus data/sample_corpus.jsonl --out data --sample --unseen-min-support 10

Source: the `Tag:` field (debtags, `facet::value`) of the apt list of Debian 12 (bookworm, main, amd64),
joined by package name with the long descriptions of debdesc-dev (`{"id": package, "text": ...}`).

Rules, all deterministic (seed 7):
- bookkeeping tags are dropped: `*::TODO` and `facet::lang:TODO` ("nobody has tagged this yet", 1,400
  uses, no meaning), `special::*` (debtags' internal markers; none left in bookworm) and
  `privacy::no-known-issues` (a review verdict, not something a description can tell);
- packages are split by source package, so `libfoo1` and `libfoo-dev` (near-identical texts) never land
  on both sides; every source with a debdesc-dev dev package goes to the test set (the dev packages stay
  out of tag training), then random sources until `--test-fraction` of the packages; a test text that is
  character for character a training text is dropped from the test set;
- tags are kept when at least `--min-support` training packages carry them;
- unseen tags: `--unseen-fraction` of the kept tags, drawn at random among those with at least
  `--unseen-min-support` training packages and at most `--unseen-max-share` of them (2%: the ~25
  structural tags such as `role::program` or `devel::library`, on up to a third of the packages, stay
  seen: one of them unseen would remove thousands of training records and be most of the unseen
  measure), never the last seen tag of a facet (the part before `::`).
  They are removed from the training records (a record left without tags is dropped); each gets one
  example text from a training package that carries it (its one-shot definition).

Outputs in OUT: tagged_train.jsonl, tagged_test.jsonl (`{"id", "text", "tags"}`), tags_seen.txt,
tags_unseen.txt, tag_examples.jsonl (`{"tag", "example", "id"}`) and stats.json; with `--sample`, the
names of data/ (`sample_tags_train.jsonl`, ...) and the statistics on stdout only.
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import lzma
import random
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEBDESC = ROOT.parent / "shared" / "data" / "debdesc-dev"
APT_LISTS = "/var/lib/apt/lists/*_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
APT_HELPER = "/usr/lib/apt/apt-helper"
NAMES = {"train": "tagged_train.jsonl", "test": "tagged_test.jsonl", "seen": "tags_seen.txt",
         "unseen": "tags_unseen.txt", "examples": "tag_examples.jsonl"}
SAMPLE_NAMES = {"train": "sample_tags_train.jsonl", "test": "sample_tags_test.jsonl",
                "seen": "sample_tags_seen.txt", "unseen": "sample_tags_unseen.txt",
                "examples": "sample_tag_examples.jsonl"}
BOOKKEEPING = {"privacy::no-known-issues"}


@dataclass(frozen=True)
class SplitConfig:
    seed: int = 7
    test_fraction: float = 0.10
    min_support: int = 5
    unseen_fraction: float = 0.20
    unseen_min_support: int = 20
    unseen_max_share: float = 0.02           # tags on more of the training packages stay seen
    max_chars: int = 0                       # 0: keep whole texts


@dataclass(frozen=True)
class Package:
    source: str
    tags: tuple[str, ...]


# ---------------------------------------------------------------- reading
def packages_text(path: str | Path | None = None) -> tuple[str, str]:
    """(text of the Packages list, its name without host); .lz4 via apt-helper, .gz, .xz or plain."""
    if path is None:
        found = sorted(glob.glob(APT_LISTS))
        if not found:
            raise ValueError(f"no Debian Packages list matches {APT_LISTS}; run `apt-get update` "
                             "(bookworm main amd64 in sources.list) or pass --packages FILE")
        path = found[0]
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such Packages file; run `apt-get update` or pass an existing --packages FILE")
    name = path.name.split("_", 1)[1] if "_dists_" in path.name else path.name    # drop the mirror's host
    if path.suffix == ".lz4":
        done = subprocess.run([APT_HELPER, "cat-file", str(path)], capture_output=True)
        if done.returncode != 0:
            raise ValueError(f"{path}: apt-helper could not decompress it ({done.stderr.decode()[:200].strip()}); "
                             "run `apt-get update` or pass a plain, .gz or .xz Packages file")
        raw = done.stdout
    else:
        opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
        with opener(path, "rb") as handle:
            raw = handle.read()
    return raw.decode("utf-8", errors="replace"), name


def stanzas(text: str):
    """Each deb822 stanza as {field: value}, continuation lines joined by a space."""
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                fields[last] += " " + line.strip()
        elif ":" in line:
            last, value = line.split(":", 1)
            fields[last] = value.strip()
    if fields:
        yield fields


def split_tags(value: str) -> list[str]:
    """`a::x, b::{y,z}` -> ['a::x', 'b::y', 'b::z'] (commas inside braces do not split; braces expand)."""
    parts, depth, current = [], 0, ""
    for char in value:
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    tags = []
    for part in (p.strip() for p in parts):
        if "{" in part and part.endswith("}"):
            head, inner = part[:-1].split("{", 1)
            tags.extend(head + item.strip() for item in inner.split(",") if item.strip())
        elif part:
            tags.append(part)
    return tags


def parse_packages(text: str) -> dict[str, Package]:
    """Package name -> (source package, debtags); a name listed twice merges its tags."""
    packages: dict[str, Package] = {}
    for fields in stanzas(text):
        name = fields.get("Package")
        if not name:
            continue
        source = fields.get("Source", name).split(" ", 1)[0] or name
        tags = tuple(split_tags(fields.get("Tag", "")))
        if name in packages:
            tags = tuple(dict.fromkeys(packages[name].tags + tags))
            source = packages[name].source
        packages[name] = Package(source, tags)
    return packages


def is_bookkeeping(tag: str) -> bool:
    facet, _, value = tag.partition("::")
    return facet == "special" or value.endswith("TODO") or tag in BOOKKEEPING


def read_corpus(path: Path) -> dict[str, str]:
    texts = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                    texts[str(record["id"])] = str(record.get("text") or "").strip()
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise ValueError(f"{path}:{number}: expected JSON {{\"id\", \"text\"}}; fix the corpus") from None
    return texts


def read_dev_ids(path: Path | None) -> set[str]:
    if path is None or not path.is_file():
        return set()
    return {line.split("\t")[1] for line in path.read_text(encoding="utf-8").splitlines() if line.count("\t") >= 2}


# ---------------------------------------------------------------- splitting
def split_packages(packages: dict[str, Package], names: list[str], dev_ids: set[str],
                   config: SplitConfig) -> set[str]:
    """The test packages: whole source groups, the dev packages' groups first, then random groups."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[packages[name].source].append(name)
    test_groups = {source for source, members in groups.items() if dev_ids.intersection(members)}
    target = round(config.test_fraction * len(names))
    size = sum(len(groups[source]) for source in test_groups)
    others = sorted(set(groups) - test_groups)
    random.Random(config.seed).shuffle(others)
    for source in others:
        if size >= target:
            break
        test_groups.add(source)
        size += len(groups[source])
    return {name for source in test_groups for name in groups[source]}


def choose_unseen(support: Counter, kept: list[str], n_train: int, config: SplitConfig) -> list[str]:
    """A random `unseen_fraction` of the kept tags, from those with enough support, no facet emptied."""
    facet_seen = Counter(tag.split("::")[0] for tag in kept)
    most = config.unseen_max_share * n_train
    candidates = sorted(tag for tag in kept if config.unseen_min_support <= support[tag] <= most)
    random.Random(config.seed + 1).shuffle(candidates)
    target, unseen = round(config.unseen_fraction * len(kept)), []
    for tag in candidates:
        if len(unseen) >= target:
            break
        facet = tag.split("::")[0]
        if facet_seen[facet] > 1:
            facet_seen[facet] -= 1
            unseen.append(tag)
    return sorted(unseen)


def build(packages: dict[str, Package], corpus: dict[str, str], dev_ids: set[str],
          config: SplitConfig = SplitConfig()) -> dict:
    """The data set as {"train", "test", "seen", "unseen", "examples", "stats"} (records are dicts)."""
    tagged = {name: [t for t in package.tags if not is_bookkeeping(t)]
              for name, package in packages.items() if package.tags}
    dropped_bookkeeping = Counter(t for name in tagged for t in packages[name].tags if is_bookkeeping(t))
    names = sorted(name for name, tags in tagged.items() if tags and corpus.get(name))
    if not names:
        raise ValueError("no package has both debtags and a non-empty text in the corpus; "
                         "check that --packages and --corpus describe the same archive")
    test = split_packages(packages, names, dev_ids, config)
    train_names = [name for name in names if name not in test]
    support = Counter(t for name in train_names for t in tagged[name])
    kept = sorted(t for t, n in support.items() if n >= config.min_support)
    unseen = choose_unseen(support, kept, len(train_names), config)
    seen = sorted(set(kept) - set(unseen))
    text = (lambda name: corpus[name][:config.max_chars].rstrip()) if config.max_chars else corpus.__getitem__
    seen_set, kept_set = set(seen), set(kept)
    train = [{"id": n, "text": text(n), "tags": [t for t in tagged[n] if t in seen_set]} for n in train_names]
    train = [record for record in train if record["tags"]]
    train_texts = {record["text"] for record in train}
    test_records = [{"id": n, "text": text(n), "tags": [t for t in tagged[n] if t in kept_set]}
                    for n in sorted(test)]
    duplicates = sum(1 for r in test_records if r["text"] in train_texts)
    test_records = [r for r in test_records if r["tags"] and r["text"] not in train_texts]
    examples = choose_examples(unseen, train_names, tagged, {r["id"] for r in train}, text, config)
    stats = statistics(packages, tagged, names, train, test_records, seen, unseen, dev_ids, config,
                       dropped_bookkeeping, support, kept, duplicates)
    return {"train": train, "test": test_records, "seen": seen, "unseen": unseen, "examples": examples,
            "stats": stats}


def choose_examples(unseen, train_names, tagged, in_training: set[str], text, config) -> list[dict]:
    """One training package per unseen tag, at random; preferably one whose text stays in training (it has
    seen tags too) and is not boilerplate shared with other packages ("This is a transitional package")."""
    rng, examples = random.Random(config.seed + 2), []
    repeated = Counter(text(name) for name in train_names)
    for tag in unseen:
        carriers = [name for name in train_names if tag in tagged[name]]
        kept = [name for name in carriers if name in in_training] or carriers
        preferred = [name for name in kept if repeated[text(name)] == 1] or kept
        name = rng.choice(preferred)
        examples.append({"tag": tag, "example": text(name), "id": name})
    return examples


def statistics(packages, tagged, names, train, test, seen, unseen, dev_ids, config, dropped, support,
               kept, duplicates) -> dict:
    unseen_set = set(unseen)
    return {
        "config": asdict(config),
        "packages_listed": len(packages), "packages_with_tags": sum(1 for p in packages.values() if p.tags),
        "packages_joined": len(names),
        "bookkeeping_tags_dropped": dict(sorted(dropped.items())),
        "tags_in_training_packages": len(support), "tags_below_min_support": len(support) - len(kept),
        "tags_kept": len(kept), "tags_seen": len(seen), "tags_unseen": len(unseen),
        "unseen_by_facet": dict(sorted(Counter(t.split("::")[0] for t in unseen).items())),
        "train_records": len(train), "test_records": len(test),
        "test_dev_packages": sum(1 for r in test if r["id"] in dev_ids),
        "test_dropped_as_duplicate_text": duplicates,
        "test_records_with_unseen_tags": sum(1 for r in test if unseen_set.intersection(r["tags"])),
        "train_tag_assignments": sum(len(r["tags"]) for r in train),
        "test_tag_assignments": sum(len(r["tags"]) for r in test),
        "test_unseen_assignments": sum(1 for r in test for t in r["tags"] if t in unseen_set),
    }


# ---------------------------------------------------------------- writing
def write(dataset: dict, out: Path, names: dict[str, str], with_stats: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for key in ("train", "test", "examples"):
        with open(out / names[key], "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in dataset[key])
    for key in ("seen", "unseen"):
        (out / names[key]).write_text("".join(tag + "\n" for tag in dataset[key]), encoding="utf-8")
    if with_stats:
        (out / "stats.json").write_text(json.dumps(dataset["stats"], indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", help=f"a Packages list (.lz4, .gz, .xz or plain); default {APT_LISTS}")
    parser.add_argument("--corpus", type=Path, default=DEBDESC / "corpus.jsonl")
    parser.add_argument("--qrels", type=Path, default=DEBDESC / "qrels_dev.tsv",
                        help="debdesc-dev dev qrels: their packages go to the test set")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sample", action="store_true", help="write data/'s sample file names, no stats.json")
    defaults = SplitConfig()
    for field, value in asdict(defaults).items():
        parser.add_argument("--" + field.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    config = SplitConfig(**{field: getattr(args, field) for field in asdict(defaults)})
    try:
        text, list_name = packages_text(args.packages)
        if not args.corpus.is_file():
            raise ValueError(f"{args.corpus}: no such corpus; pass --corpus corpus.jsonl of debdesc-dev")
        dataset = build(parse_packages(text), read_corpus(args.corpus), read_dev_ids(args.qrels), config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dataset["stats"] = {"packages_list": list_name, "corpus": args.corpus.name, **dataset["stats"]}
    write(dataset, args.out, SAMPLE_NAMES if args.sample else NAMES, with_stats=not args.sample)
    print(json.dumps(dataset["stats"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
