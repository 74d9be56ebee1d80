"""Write the Unicode tables the Java featuriser uses to reproduce dssm/featurise.py exactly.

Java's Unicode version (the JDK's) differs from Python's (unicodedata, and the `regex` module's own),
so the Java side takes its Unicode facts from the Python that runs the featuriser
(docs/FORMAT.md section 1):

* casefold.tsv: str.casefold() is context-free (full case folding, CaseFolding.txt C+F), so a table
  code point -> folded string reproduces it. One line per code point c with chr(c).casefold() != chr(c):
  `<hex c>\t<hex of each folded code point, space separated>`.
* token_ranges.txt: the code points matched by the tokeniser class `[\p{L}\p{N}\p{M}]` of the `regex`
  module, as `<hex start> <hex end>` inclusive ranges.
* unassigned_ranges.txt: the code points Python's unicodedata does not know (category Cn). NFKC leaves
  them unchanged in Python, so Java normalises only the runs between them.

Each file starts with a `#` line naming the versions. Regenerate after a Python or `regex` upgrade:
    .venv/bin/python es-plugin/scripts/gen_casefold.py
"""
from __future__ import annotations

import pathlib
import sys
import unicodedata

import regex

OUT = pathlib.Path(__file__).resolve().parent.parent / "src/main/resources/org/dssmsearch/model"
TOKEN_CLASS = regex.compile(r"[\p{L}\p{N}\p{M}]")
CODE_POINTS = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


def folding_lines() -> list[str]:
    """One `hex\\thex hex` line per code point whose casefold differs from itself."""
    lines = []
    for code_point in CODE_POINTS:
        folded = chr(code_point).casefold()
        if folded != chr(code_point):
            lines.append(f"{code_point:X}\t" + " ".join(f"{ord(c):X}" for c in folded))
    return lines


def ranges(predicate) -> list[str]:
    """Inclusive `start end` hex ranges of the code points where predicate holds."""
    lines, start, previous = [], None, None
    for code_point in CODE_POINTS:
        if predicate(code_point):
            if start is None or code_point != previous + 1:
                if start is not None:
                    lines.append(f"{start:X} {previous:X}")
                start = code_point
            previous = code_point
    if start is not None:
        lines.append(f"{start:X} {previous:X}")
    return lines


def write(name: str, lines: list[str]) -> None:
    header = f"# python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}, regex {regex.__version__}\n"
    (OUT / name).write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} lines to {OUT / name}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write("casefold.tsv", folding_lines())
    write("token_ranges.txt", ranges(lambda c: TOKEN_CLASS.match(chr(c)) is not None))
    write("unassigned_ranges.txt", ranges(lambda c: unicodedata.category(chr(c)) == "Cn"))


if __name__ == "__main__":
    main()
