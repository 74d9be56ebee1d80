"""Write the per-code-point case-folding table the Java featuriser applies after NFKC.

Python's str.casefold() is context-free (full case folding, Unicode CaseFolding.txt C+F), so a
table code point -> folded string reproduces it exactly in Java (docs/FORMAT.md section 1, step 2).
The table comes from the Python that runs the featuriser, so Java folds with Python's Unicode
version, not the JDK's.

Format (UTF-8 text): a header line `# unicodedata <version>`, then one line per code point c with
chr(c).casefold() != chr(c): `<hex c>\t<hex of each folded code point, space separated>`.

Regenerate: .venv/bin/python es-plugin/scripts/gen_casefold.py
"""
from __future__ import annotations

import pathlib
import sys
import unicodedata

OUT = pathlib.Path(__file__).resolve().parent.parent / "src/main/resources/org/dssmsearch/casefold.tsv"


def folding_lines() -> list[str]:
    """One `hex\\thex hex` line per code point whose casefold differs from itself."""
    lines = []
    for code_point in range(sys.maxunicode + 1):
        if 0xD800 <= code_point <= 0xDFFF:
            continue  # surrogates never reach the featuriser as code points
        char = chr(code_point)
        folded = char.casefold()
        if folded != char:
            lines.append(f"{code_point:X}\t" + " ".join(f"{ord(c):X}" for c in folded))
    return lines


def main() -> None:
    lines = folding_lines()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(f"# unicodedata {unicodedata.unidata_version}\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} foldings to {OUT}")


if __name__ == "__main__":
    main()
