"""False accepts of the semantic side, FaceNet-style: VAL@FAR and the cosine threshold of a target FAR.

Schroff, Kalenichenko and Philbin 2015 ("FaceNet", section 4.1) judge an embedding by pairs: with
`P_same` the matching pairs and `P_diff` the non-matching ones, a threshold `t` accepts a pair when its
cosine is `>= t`, and
    VAL(t) = |{(i, j) in P_same : cos >= t}| / |P_same|     (true accepts)
    FAR(t) = |{(i, j) in P_diff : cos >= t}| / |P_diff|     (false accepts)
Here a matching pair is a held-out query and a document judged relevant to it (qrels), a non-matching
pair the query and a document drawn at random among the others (seeded). `threshold_at_far(negatives,
far)` is the smallest threshold whose FAR is at most `far`: the value just above the `m+1`-th highest
non-pair cosine, `m = floor(far * |P_diff|)`; `VAL@FAR` is VAL at that threshold.

`dssm calibrate` stores the thresholds of FARS in the manifest (section "calibration"); `dssm search
--max-far F` reads the threshold back (`stored_threshold`) and drops semantic hits below it.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

FARS = (1e-1, 1e-2, 1e-3, 1e-4)
NON_PAIRS_PER_QUERY = 100
DEFAULT_SEED = 13


def threshold_at_far(negatives: np.ndarray, far: float) -> float:
    """Smallest cosine threshold `t` with `mean(negatives >= t) <= far` (accept when cos >= t)."""
    negatives = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    if not len(negatives):
        raise ValueError("no non-matching pairs to calibrate on")
    if not 0.0 < far < 1.0:
        raise ValueError(f"false-accept rate must be in (0, 1), got {far!r}")
    allowed = math.floor(far * len(negatives) + 1e-9)  # false accepts permitted
    return float(np.nextafter(negatives[allowed], np.inf)) if allowed < len(negatives) else float(negatives[-1])


def val_far(positives: np.ndarray, negatives: np.ndarray, threshold: float) -> tuple[float, float]:
    """(VAL, FAR) at `threshold`: the fractions of matching / non-matching pairs with cosine >= threshold."""
    positives, negatives = np.asarray(positives), np.asarray(negatives)
    return float(np.mean(positives >= threshold)), float(np.mean(negatives >= threshold))


def val_at_far(positives: np.ndarray, negatives: np.ndarray, far: float) -> dict:
    """{"far_target", "threshold", "val", "far"} (the FAR actually reached is <= the target)."""
    threshold = threshold_at_far(negatives, far)
    val, reached = val_far(positives, negatives, threshold)
    return {"far_target": far, "threshold": threshold, "val": val, "far": reached}


def pair_cosines(index, encoder, queries: dict[str, str], qrels: dict[str, dict[str, int]],
                 non_pairs_per_query: int = NON_PAIRS_PER_QUERY, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(positives [n_pairs], negatives [n_queries * non_pairs_per_query]) cosines, as search scores them.

    `index` is an EmbeddedIndex (`ids`, `exact_scores(rows, vector)`: with passages a document's best
    cosine over its whole vector and its passages, the score `--max-far` cuts); relevant documents
    absent from it are skipped; a non-pair never uses a document judged relevant to its query.
    """
    row = {doc_id: n for n, doc_id in enumerate(index.ids)}
    qids = list(queries)
    vectors = encoder.encode([queries[qid] for qid in qids], side="query").astype(np.float64)
    rng = np.random.default_rng(seed)
    positives, negatives = [], []
    for qid, vector in zip(qids, vectors):
        relevant = {row[doc] for doc, rel in qrels.get(qid, {}).items() if rel > 0 and doc in row}
        if relevant:
            positives.extend(index.exact_scores(np.array(sorted(relevant)), vector).tolist())
        if len(relevant) >= len(row):
            continue
        drawn = rng.integers(0, len(row) - len(relevant), size=non_pairs_per_query)
        for skipped in sorted(relevant):  # map [0, rows - relevant) onto the rows that are not relevant
            drawn += drawn >= skipped
        drawn = np.sort(drawn)
        negatives.extend(index.exact_scores(drawn, vector).tolist())
    if not positives:
        raise ValueError("no judged (query, relevant document) pair is in the index; check the qrels")
    return np.asarray(positives), np.asarray(negatives)


def calibrate(positives: np.ndarray, negatives: np.ndarray, fars=FARS) -> dict:
    """The manifest's "calibration" section: per FAR its threshold, VAL and reached FAR, and the counts.

    A FAR below `1 / len(negatives)` cannot be measured (no false accept allowed and none observable);
    it is left out rather than reported with a threshold nobody can trust.
    """
    measurable = [far for far in fars if far * len(negatives) >= 1.0]
    return {"pairs": len(positives), "non_pairs": len(negatives),
            "thresholds": {f"{far:g}": val_at_far(positives, negatives, far) for far in measurable},
            "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def save_calibration(index_dir: str | Path, section: dict) -> None:
    from indexer.manifest import update_sections

    update_sections(index_dir, {"calibration": section})


def stored_threshold(manifest: dict, max_far: float, min_similarity: float | None = None) -> float:
    """The cosine threshold `dssm calibrate` stored for the largest calibrated FAR <= `max_far`."""
    if min_similarity is not None:
        raise ValueError("give --max-far or --min-similarity, not both")
    thresholds = (manifest.get("calibration") or {}).get("thresholds") or {}
    usable = sorted((float(far), entry["threshold"]) for far, entry in thresholds.items() if float(far) <= max_far)
    if not usable:
        calibrated = ", ".join(sorted(thresholds, key=float)) or "none"
        raise ValueError(f"the index has no threshold for a false-accept rate <= {max_far:g} (calibrated: {calibrated}); "
                         f"run `dssm calibrate` on it, or pass --min-similarity")
    return usable[-1][1]


def format_calibration(section: dict) -> str:
    lines = [f"{section['pairs']:,} matching pairs, {section['non_pairs']:,} random non-pairs",
             "| FAR target | cosine threshold | VAL | FAR reached |", "|---|---|---|---|"]
    lines += [f"| {far} | {entry['threshold']:.4f} | {entry['val']:.4f} | {entry['far']:.5f} |"
              for far, entry in section["thresholds"].items()]
    return "\n".join(lines)
