"""The debtags data set (scripts/make_debtags.py): parsing, the split, and that it leaks nothing."""
from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from dssm.tagdata import load_tagged, read_tag_list

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
spec = importlib.util.spec_from_file_location("make_debtags", ROOT / "scripts" / "make_debtags.py")
make_debtags = sys.modules["make_debtags"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_debtags)


def read_examples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_no_leak(directory: Path, names: dict[str, str]) -> tuple:
    """The split's promises: no unseen tag in training, no test package in training, examples from training."""
    train, test = load_tagged(directory / names["train"]), load_tagged(directory / names["test"])
    seen, unseen = read_tag_list(directory / names["seen"]), read_tag_list(directory / names["unseen"])
    examples = read_examples(directory / names["examples"])
    assert not set(seen) & set(unseen)
    assert {tag for tags in train.tags for tag in tags} <= set(seen)              # no unseen tag leaks
    assert not set(train.ids) & set(test.ids)                                     # no test package in training
    assert not set(test.texts) & set(train.texts)
    assert {tag for tags in test.tags for tag in tags} <= set(seen) | set(unseen)
    assert sorted(e["tag"] for e in examples) == sorted(unseen)                   # one example per unseen tag
    train_text = dict(zip(train.ids, train.texts))
    for example in examples:
        assert example["id"] not in test.ids
        assert example["example"] == train_text.get(example["id"], example["example"])
    for facet in {tag.split("::")[0] for tag in unseen}:                          # no facet entirely unseen
        assert any(tag.split("::")[0] == facet for tag in seen)
    return train, test, seen, unseen, examples


def test_shipped_sample_leaks_nothing():
    train, test, seen, unseen, examples = check_no_leak(DATA, make_debtags.SAMPLE_NAMES)
    assert len(unseen) >= 20 and len(test.ids) >= 100
    assert any(set(tags) & set(unseen) for tags in test.tags)
    assert all(example["id"] in train.ids for example in examples)
    size = sum((DATA / name).stat().st_size for name in make_debtags.SAMPLE_NAMES.values())
    assert size <= 1_500_000


def synthetic_packages(count: int = 60) -> str:
    """`count` packages, two per source; tags from 3 facets, a TODO tag, a braced and a continued Tag field."""
    stanzas = []
    for i in range(count):
        tags = [f"use::u{i % 6}", f"role::r{i % 2}", f"works-with::w{i % 3}"]
        lines = [f"Package: p{i:02d}", f"Source: s{i // 2:02d} (1.0-{i})", "Version: 1.0",
                 f"Tag: {', '.join(tags[:2])},", f" {tags[2]}, devel::TODO" + (", x11::{a,b}" if i == 0 else ""),
                 "Description: a package", " with a long description line"]
        stanzas.append("\n".join(lines))
    stanzas.append("Package: untagged\nVersion: 1")
    return "\n\n".join(stanzas) + "\n"


@pytest.fixture
def synthetic(tmp_path) -> dict:
    packages = tmp_path / "Packages.gz"
    with gzip.open(packages, "wt", encoding="utf-8") as handle:
        handle.write(synthetic_packages())
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"p{i:02d}", "title": f"p{i:02d}",
                                          "text": f"package {i} does thing {i % 6} with {i % 3}"}) + "\n"
                              for i in range(60)) + json.dumps({"id": "untagged", "text": "x"}) + "\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("d1\tp07\t1\n")
    return {"packages": packages, "corpus": corpus, "qrels": qrels}


def run(synthetic: dict, out: Path) -> int:
    return make_debtags.main(["--packages", str(synthetic["packages"]), "--corpus", str(synthetic["corpus"]),
                              "--qrels", str(synthetic["qrels"]), "--out", str(out), "--min-support", "2",
                              "--unseen-min-support", "3", "--unseen-max-share", "1", "--unseen-fraction", "0.25",
                              "--test-fraction", "0.2"])


def test_synthetic_split_leaks_nothing_and_is_deterministic(synthetic, tmp_path, capsys):
    assert run(synthetic, tmp_path / "a") == 0 and run(synthetic, tmp_path / "b") == 0
    for name in [*make_debtags.NAMES.values(), "stats.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    train, test, seen, unseen, _ = check_no_leak(tmp_path / "a", make_debtags.NAMES)
    stats = json.loads((tmp_path / "a" / "stats.json").read_text())
    assert stats["packages_listed"] == 61 and stats["packages_joined"] == 60
    assert stats["bookkeeping_tags_dropped"] == {"devel::TODO": 60}
    assert stats["tags_kept"] == 6 + 2 + 3 and len(unseen) == round(0.25 * 11) == 3
    assert {"p06", "p07"} <= set(test.ids)                     # the dev package's whole source goes to test
    assert len(test.ids) == 12                                  # 20% of 60, whole sources of two
    sources = {name: int(name[1:]) // 2 for name in train.ids + test.ids}
    assert not {sources[n] for n in train.ids} & {sources[n] for n in test.ids}
    assert not {tag for tags in train.tags + test.tags for tag in tags if tag.endswith("TODO")}


def test_parsing_continuations_braces_and_sources():
    packages = make_debtags.parse_packages(synthetic_packages(2))
    assert packages["p00"] == make_debtags.Package(
        "s00", ("use::u0", "role::r0", "works-with::w0", "devel::TODO", "x11::a", "x11::b"))
    assert packages["untagged"] == make_debtags.Package("untagged", ())
    assert make_debtags.is_bookkeeping("devel::lang:TODO") and make_debtags.is_bookkeeping("special::invalid-tag")
    assert not make_debtags.is_bookkeeping("made-of::font")


def test_plain_and_xz_packages_files_read_alike(tmp_path):
    import lzma

    (tmp_path / "Packages").write_text(synthetic_packages(3), encoding="utf-8")
    with lzma.open(tmp_path / "Packages.xz", "wt", encoding="utf-8") as handle:
        handle.write(synthetic_packages(3))
    plain, name = make_debtags.packages_text(tmp_path / "Packages")
    assert name == "Packages" and plain == make_debtags.packages_text(tmp_path / "Packages.xz")[0]
    assert set(make_debtags.parse_packages(plain)) == {"p00", "p01", "p02", "untagged"}


def test_missing_apt_list_says_run_apt_get_update(monkeypatch, tmp_path):
    monkeypatch.setattr(make_debtags, "APT_LISTS", str(tmp_path / "*_Packages.lz4"))
    with pytest.raises(ValueError, match="apt-get update"):
        make_debtags.packages_text(None)
    with pytest.raises(ValueError, match="apt-get update"):
        make_debtags.packages_text(tmp_path / "absent_Packages")


def test_no_join_is_a_one_line_error(synthetic, tmp_path, capsys):
    synthetic["corpus"].write_text(json.dumps({"id": "other", "text": "t"}) + "\n")
    assert run(synthetic, tmp_path / "out") == 2
    assert "no package has both debtags" in capsys.readouterr().err
