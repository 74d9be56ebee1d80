"""Queries and relevance judgements (qrels) for evaluation, read strictly and checked against an index.

Queries: JSONL `{"qid": ..., "query": ...}` (or TSV `qid<TAB>query`). Qrels: whitespace-separated
`qid doc_id rel` (data/sample_qrels.tsv) or the TREC form `qid 0 doc_id rel`; `rel` > 0 is relevant.

`Judgements.check(queries, qrels, doc_ids)` keeps the queries that can be evaluated and counts the rest,
so that no number is silently computed on fewer queries than the user thinks:
- qrels naming a qid absent from the queries file (ignored, counted);
- qrels naming a document absent from the index (kept: the query cannot find it, which is a real miss,
  but counted, because many of them mean that the qrels belong to another corpus);
- queries without qrels, or whose qrels are all non-relevant (skipped, counted).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from indexer.documents import decoded_lines


def read_lines(path: str | Path, what: str) -> list[tuple[int, str]]:
    """(line number, line) of the non-blank, non-comment lines; errors for a missing or empty file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} file {path} does not exist; check the path")
    lines = [(number, line.rstrip("\r\n")) for number, line in enumerate(decoded_lines(path), 1)
             if line.strip() and not line.startswith("#")]
    if not lines:
        raise ValueError(f"{what} file {path} is empty; give one {what_format(what)} per line")
    return lines


def what_format(what: str) -> str:
    return {"queries": 'JSON object {"qid", "query"} (or qid<TAB>query)',
            "qrels": "qid doc_id rel (or qid 0 doc_id rel)"}[what]


def read_queries(path: str | Path) -> dict[str, str]:
    """`{qid: query}` in file order; refuses malformed lines and duplicate qids, naming the line."""
    queries: dict[str, str] = {}
    for number, line in read_lines(path, "queries"):
        qid, text = parse_query_line(line, path, number)
        if qid in queries:
            raise ValueError(f"{path}:{number}: query id {qid!r} appears twice; give each query one id")
        queries[qid] = text
    return queries


def parse_query_line(line: str, path, number: int) -> tuple[str, str]:
    if not line.lstrip().startswith("{"):
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected {what_format('queries')}, got {line[:60]!r}")
        return parts[0].strip(), parts[1]
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{number}: invalid JSON ({error.msg}); give {what_format('queries')}") from None
    if not isinstance(record, dict) or "qid" not in record or not isinstance(record.get("query"), str):
        raise ValueError(f"{path}:{number}: a query needs the fields qid and query (text)")
    return str(record["qid"]), record["query"]


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """`{qid: {doc_id: rel}}`; refuses lines that are not `qid doc rel` / `qid 0 doc rel` with integer rel."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in read_lines(path, "qrels"):
        parts = line.split()
        if len(parts) not in (3, 4):
            raise ValueError(f"{path}:{number}: expected {what_format('qrels')}, got {line[:60]!r}")
        qid, doc_id, rel = parts[0], parts[-2], parts[-1]
        try:
            qrels.setdefault(qid, {})[doc_id] = int(rel)
        except ValueError:
            raise ValueError(f"{path}:{number}: relevance {rel!r} is not an integer; "
                             f"expected {what_format('qrels')}") from None
    return qrels


@dataclass(frozen=True)
class Judgements:
    """The evaluable queries and their qrels, with counts of everything left out or suspicious."""

    queries: dict[str, str]              # evaluated: at least one relevant (rel > 0) judgement
    qrels: dict[str, dict[str, int]]     # the qrels of those queries only
    unknown_queries: int = 0             # qids in the qrels but not in the queries file
    unknown_query_judgements: int = 0    # their qrels lines
    unknown_documents: int = 0           # relevant judgements naming a document absent from the index
    without_qrels: int = 0               # queries skipped: no judgement at all
    without_relevant: int = 0            # queries skipped: only non-relevant judgements
    documents_checked: bool = True       # False when the backend cannot list its document ids

    @classmethod
    def check(cls, queries: dict[str, str], qrels: dict[str, dict[str, int]],
              doc_ids: Iterable[str] | None) -> "Judgements":
        unknown = [qid for qid in qrels if qid not in queries]
        relevant = {qid: judged for qid, judged in qrels.items()
                    if qid in queries and any(rel > 0 for rel in judged.values())}
        known = None if doc_ids is None else set(doc_ids)
        unknown_documents = 0 if known is None else sum(
            1 for judged in relevant.values() for doc_id, rel in judged.items() if rel > 0 and doc_id not in known)
        kept = {qid: text for qid, text in queries.items() if qid in relevant}
        if not kept:
            raise ValueError("no query has a relevant judgement in the qrels (do the qids of the queries "
                             "and qrels files match?); nothing to evaluate")
        return cls(kept, {qid: relevant[qid] for qid in kept}, len(unknown), sum(len(qrels[q]) for q in unknown),
                   unknown_documents, sum(1 for qid in queries if qid not in qrels),
                   sum(1 for qid in queries if qid in qrels and qid not in relevant), known is not None)

    def subset(self, qids: Iterable[str]) -> "Judgements":
        """The same checks restricted to `qids` (a split of the evaluated queries)."""
        qids = [qid for qid in qids if qid in self.queries]
        return Judgements({qid: self.queries[qid] for qid in qids}, {qid: self.qrels[qid] for qid in qids},
                          documents_checked=self.documents_checked)

    def counts(self) -> dict:
        return {"evaluated": len(self.queries), "unknown_queries": self.unknown_queries,
                "unknown_query_judgements": self.unknown_query_judgements,
                "unknown_documents": self.unknown_documents if self.documents_checked else None,
                "without_qrels": self.without_qrels, "without_relevant": self.without_relevant}

    def warnings(self) -> list[str]:
        """One line per problem found, for stderr; empty when the files agree with each other and the index."""
        lines = []
        if self.unknown_queries:
            lines.append(f"{self.unknown_query_judgements} qrels lines name {self.unknown_queries} query ids "
                         f"absent from the queries file (ignored)")
        if self.unknown_documents:
            lines.append(f"{self.unknown_documents} relevant judgements name documents absent from the index "
                         f"(counted as misses; are the qrels for this corpus?)")
        if self.without_qrels:
            lines.append(f"{self.without_qrels} queries have no qrels (skipped)")
        if self.without_relevant:
            lines.append(f"{self.without_relevant} queries have only non-relevant qrels (skipped)")
        if not self.documents_checked:
            lines.append("document ids of the qrels were not checked (the backend cannot list its documents)")
        return lines
