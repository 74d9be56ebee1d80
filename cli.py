"""The `dssm` command line: a thin click shell over `dssm/` and `indexer/`.

Each command parses its options, calls one library function and prints the result. Usage errors
(bad input the user can fix) exit with code 2 and a one-line message; nothing prints a traceback.
"""
from __future__ import annotations

import functools
import json
import sys
import unicodedata

import click

from indexer.analysis import ANALYZERS, DEFAULT_ANALYZER
from indexer.passages import DEFAULT_PASSAGES


class UsageError(click.ClickException):
    """A one-line usage error: 'Error: <problem and fix>', exit code 2, no traceback."""

    exit_code = 2


def user_errors(command):
    """Turn the library's ValueError/FileNotFoundError into one-line usage errors (exit 2)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ValueError, FileNotFoundError, IsADirectoryError) as error:
            raise UsageError(str(error).splitlines()[0] if str(error) else type(error).__name__) from None

    return wrapper


def int_list(ctx, param, value):
    """'300,300,128' -> (300, 300, 128)."""
    if value is None:
        return None
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 300,300,128, got {value!r}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dssm-search")
def main() -> None:
    """dssm-search: train a letter-trigram DSSM, build hybrid (BM25 + vector) indexes, search."""


# --- training and export (dssm/) -------------------------------------------------------------

@main.command()
@click.option("--pairs", type=click.Path(dir_okay=False),
              help="JSONL {query, doc_id} pairs (with --corpus) or TSV query<TAB>document.")
@click.option("--corpus", type=click.Path(dir_okay=False), help="JSONL {id, title, text} documents.")
@click.option("--tags", type=click.Path(dir_okay=False),
              help="JSONL {text, tags: [...]} tagged texts: (text, tag) pairs, alone or beside --pairs.")
@click.option("--teacher", type=click.Path(file_okay=False),
              help="Distil a teacher: DIR/queries.npy (pairs-file order) and DIR/documents.npy (corpus order), unit vectors.")
@click.option("--distill-weight", default=1.0, show_default=True, type=float, help="Weight of the distillation loss (with --teacher).")
@click.option("--teacher-gamma", default=10.0, show_default=True, type=float, help="Sharpness of the teacher's in-batch softmax (with --teacher).")
@click.option("--tag-weight", default=0.2, show_default=True, type=float,
              help="Loss weight of a batch of (text, tag) pairs beside search pairs (lower: better search, worse tags).")
@click.option("--passage-positives", default=0, show_default=True, type=click.IntRange(0, 64),
              help="Each labelled pair also learns its document's first N passages (title + --passage-window words, "
                   "what the index scores by MaxP) as positives; 0: off.")
@click.option("--passage-window", default=12, show_default=True, type=click.IntRange(1, 10000),
              help="Words per training passage (the index's default --passages 12:6:2).")
@click.option("--pseudo-queries", default="none", show_default=True,
              help="With --corpus, also learn from pseudo-queries cut from every corpus document: a comma list of "
                   "first-sentence, span, title (dssm/pseudo.py), or none.")
@click.option("--pseudo-weight", default=1.0, show_default=True, type=float,
              help="Loss weight of a batch of (pseudo-query, document) pairs beside labelled pairs.")
@click.option("--init", "init_dir", type=click.Path(file_okay=False),
              help="Start from this model's weights (same --layers, --buckets, --max-features, --word-ngrams).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model directory to write.")
@click.option("--loss", default="softmax", show_default=True, help="softmax (DSSM) | triplet.")
@click.option("--negatives", default="batch-all", show_default=True,
              help="random | semi-hard | batch-hard | batch-all (all in-batch) | bm25 (offline hard negatives).")
@click.option("--positives", default="random", show_default=True, help="random | hardest, for queries with several positives.")
@click.option("--distance", default="cosine", show_default=True, help="Triplet distance: cosine | sqeuclidean.")
@click.option("--margin", default=0.2, show_default=True, type=float, help="Triplet margin.")
@click.option("--gamma", default=20.0, show_default=True, type=float, help="Softmax smoothing factor.")
@click.option("--layer-weight", default=0.0, show_default=True, type=float, help="Weight of the layer-wise triplet regulariser.")
@click.option("--feature-dropout", default=0.0, show_default=True, type=float,
              help="Training only: drop each trigram id with this probability (regularises).")
@click.option("--symmetric", is_flag=True, help="Softmax loss: also rank the batch's queries for each document.")
@click.option("--epochs", default=12, show_default=True, type=int)
@click.option("--batch-size", default=512, show_default=True, type=int)
@click.option("--lr", "learning_rate", default=2e-3, show_default=True, type=float, help="Adam learning rate.")
@click.option("--table-lr-scale", default=1.0, show_default=True, type=float,
              help="lazy-adam: the trigram table learns at this many times --lr (its rows see few updates each).")
@click.option("--optimizer", default="lazy-adam", show_default=True,
              help="lazy-adam (updates only the trigram rows each batch touches: faster on CPU) | adam.")
@click.option("--layers", default="300,300,128", show_default=True, callback=int_list, help="Tower layer sizes.")
@click.option("--buckets", default=32768, show_default=True, type=int, help="Trigram hash buckets.")
@click.option("--max-features", default=512, show_default=True, type=int, help="Ids kept per text.")
@click.option("--word-ngrams", default=0, show_default=True, type=click.IntRange(0, 2), help="Add word unigram/bigram features.")
@click.option("--asymmetric", is_flag=True, help="Separate query and document towers (default: one shared tower).")
@click.option("--val-fraction", default=0.05, show_default=True, type=float, help="Pairs held out (by document) for validation.")
@click.option("--patience", default=3, show_default=True, type=int, help="Early-stopping patience (epochs).")
@click.option("--seed", default=13, show_default=True, type=int)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last finished epoch.")
@click.option("--skip-missing", is_flag=True, help="Skip pairs naming doc ids absent from the corpus.")
@click.option("--force", is_flag=True, help="Replace an --out that holds something other than a model.")
@click.option("--quiet", is_flag=True, help="One line per epoch instead of a progress bar.")
@user_errors
def train(pairs, corpus, tags, teacher, init_dir, out, layers, buckets, max_features, word_ngrams, asymmetric, resume,
          skip_missing, force, quiet, **hyper):
    """Train a DSSM on (query, relevant document) pairs and/or (text, tag) pairs; export it to OUT."""
    from dssm.config import FeaturiserConfig, TowerConfig, TrainConfig

    featuriser = FeaturiserConfig(buckets=buckets, max_features=max_features, word_ngrams=word_ngrams)
    tower = TowerConfig(layers=layers, shared=not asymmetric)
    config = TrainConfig(**hyper)
    from dssm.train import train as run_training                      # imports TensorFlow

    result = run_training(pairs, corpus, out, featuriser, tower, config, resume=resume,
                          skip_missing=skip_missing, verbose=2 if quiet else 1, log=click.echo, tags_path=tags,
                          teacher_dir=teacher, init_dir=init_dir, force=force)
    best = max(result.history.get("val_mrr_at_10", [float("nan")]))
    click.echo(f"trained {result.epochs_run} epochs; best validation MRR@10 {best:.4f}; fingerprint {result.fingerprint}")


def adapt_options(command):
    """`dssm adapt`'s options, shared by `dssm index build --adapt` (defaults: dssm.config.ADAPT_DEFAULTS)."""
    from dssm.config import ADAPT_DEFAULTS

    options = [
        click.option("--pseudo-queries", default=ADAPT_DEFAULTS["pseudo_queries"], show_default=True,
                     help="Pseudo-query kinds cut from each document: first-sentence, span, title (dssm/pseudo.py)."),
        click.option("--adapt-epochs", "epochs", default=ADAPT_DEFAULTS["epochs"], show_default=True, type=int,
                     help="Epochs of adaptation."),
        click.option("--adapt-lr", "learning_rate", default=ADAPT_DEFAULTS["learning_rate"], show_default=True,
                     type=float, help="Adam learning rate of adaptation."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_adaptation(model, corpus, out, quiet, force=False, **hyper):
    from dssm.config import adapt_config
    from dssm.train import adapt as adapt_model                      # imports TensorFlow

    result = adapt_model(model, corpus, out, adapt_config(**hyper), verbose=2 if quiet else 1, log=click.echo,
                         force=force)
    best = max(result.history.get("val_mrr_at_10", [float("nan")]))
    click.echo(f"adapted {model} to {corpus} in {result.epochs_run} epochs; validation MRR@10 on held-out documents' "
               f"pseudo-queries {best:.4f}; fingerprint {result.fingerprint}")


@main.command()
@click.option("--model", required=True, type=click.Path(file_okay=False), help="The trained model to adapt (dssm train --out).")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="JSONL {id, title, text}: the new domain's documents, no queries needed.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model directory to write (the adapted model).")
@adapt_options
@click.option("--batch-size", default=512, show_default=True, type=int)
@click.option("--seed", default=13, show_default=True, type=int)
@click.option("--force", is_flag=True, help="Replace an --out that holds something other than a model.")
@click.option("--quiet", is_flag=True, help="One line per epoch instead of a progress bar.")
@user_errors
def adapt(model, corpus, out, quiet, **hyper):
    """Fine-tune MODEL on a new CORPUS without queries (zero-label domain adaptation).

    The model learns to find each document of CORPUS from pseudo-queries cut from it, starting from
    its own weights and keeping its featuriser and tower; validation ranks held-out documents."""
    run_adaptation(model, corpus, out, quiet, **hyper)


@main.command()
@click.option("--model", required=True, type=click.Path(file_okay=False), help="Model directory.")
@click.option("--side", default="query", show_default=True, type=click.Choice(["query", "document"]))
@click.argument("texts", nargs=-1, required=True)
@user_errors
def encode(model, side, texts):
    """Print the vectors of TEXTS as JSON lines (numpy encoder, no TensorFlow)."""
    from dssm.export import load_encoder

    encoder = load_encoder(model)
    for text, vector in zip(texts, encoder.encode(list(texts), side=side)):
        click.echo(json.dumps({"text": text, "vector": [round(float(x), 7) for x in vector]}, ensure_ascii=False))


@main.command("model-info")
@click.argument("model", type=click.Path(file_okay=False))
@user_errors
def model_info(model):
    """Show a model's fingerprint, dimensions and training summary."""
    from dssm.export import load_encoder

    encoder = load_encoder(model)
    training = encoder.config.get("training", {})
    click.echo(json.dumps({"fingerprint": encoder.fingerprint, "dim": encoder.dim,
                           "featuriser": encoder.config["featuriser"], "tower": encoder.config["tower"],
                           "epochs_run": training.get("epochs_run"), "pairs": training.get("pairs")}, indent=2))


# --- embedded index and search (indexer/) ----------------------------------------------------

class ProgressPrinter:
    """`encoded 12,288 docs (2,345 docs/s)` on stderr, rewritten in place; silent with --quiet."""

    def __init__(self, quiet: bool, template: str = "encoded {done:,} docs ({rate:,.0f} docs/s)") -> None:
        import time

        self.clock, self.quiet, self.template = time.perf_counter, quiet, template
        self.done, self.start = 0, time.perf_counter()

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.quiet:
            rate = self.done / max(self.clock() - self.start, 1e-9)
            click.echo("\r" + self.template.format(done=self.done, rate=rate), err=True, nl=False)

    def finish(self) -> None:
        if not self.quiet and self.done:
            click.echo(err=True)


def index_summary(manifest: dict, seconds: float, out) -> str:
    from indexer.passages import passage_config

    counts = manifest["counts"]
    size = sum(entry["bytes"] for entry in manifest["files"].values())
    passages = manifest.get("passages")
    spec = ":".join(str(value) for value in passage_config(passages).values()) if passages else ""
    beside = f", {passages['count']:,} passages of {spec}" if passages else ""
    analysis = manifest["bm25"].get("analyzer", "simple")
    return (f"{out}: {counts['documents']:,} documents ({counts['zero_vectors']:,} without features){beside}, "
            f"BM25 analyzer {analysis}, {size / 1e6:.1f} MB, in {seconds:.1f} s")


def tagging_options(command):
    """--with-tags, --tag-k, --tag-min-similarity: shared by index build and index add."""
    options = [
        click.option("--with-tags", type=click.Path(file_okay=False), help="Tag index (dssm tag index, same model): store each document's predicted tags, shown by search, filtered by search --tag."),
        click.option("--tag-k", default=5, show_default=True, type=click.IntRange(min=1), help="Tags kept per document (with --with-tags)."),
        click.option("--tag-min-similarity", default=0.2, show_default=True, type=click.FloatRange(-1, 1), help="Keep a document's tags whose cosine is at least this (with --with-tags)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def tagging_of(with_tags, tag_k, tag_min_similarity) -> dict | None:
    return {"index": with_tags, "k": tag_k, "min_similarity": tag_min_similarity} if with_tags else None


@main.group()
def index() -> None:
    """Build and update an embedded index: Annoy + BM25 + document store in one directory."""


@index.command("build")
@click.option("--model", required=True, type=click.Path(file_okay=False), help="Model directory (dssm train --out).")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="JSONL {id, title, text}, or TSV/CSV with a header row.")
@click.option("--out", type=click.Path(), help="Index directory to write (replaced atomically when it exists); optional with --es-index.")
@click.option("--n-trees", default=50, show_default=True, type=click.IntRange(1, 10_000), help="Annoy trees: more = better recall, bigger index.")
@click.option("--search-k", default=20000, show_default=True, type=click.IntRange(-1, 2**31 - 1), help="Default Annoy search_k stored in the index (-1: Annoy's own).")
@click.option("--on-duplicate", default="error", show_default=True, help="Duplicate ids in the corpus: error | first | last.")
@click.option("--on-disk-build", is_flag=True, help="Build Annoy in the file (corpora larger than memory).")
@click.option("--batch-size", default=1024, show_default=True, type=click.IntRange(1, 1 << 20), help="Documents encoded per batch.")
@click.option("--passages", metavar="W:S[:N]|none", default=DEFAULT_PASSAGES, show_default=True,
              help="Also encode windows of W words every S words of each text, the first N only with :N; a "
                   "document scores its best passage or its whole vector (MaxP), in the embedded index and in "
                   "Elasticsearch (nested kNN; the plugin's dssm_embed ingest processor reads the spec from the index). "
                   "none: one vector per document (less than half the size).")
@click.option("--adapt", "adapt_dir", type=click.Path(file_okay=False),
              help="First adapt MODEL to CORPUS without labels (as `dssm adapt` with its defaults), write the "
                   "adapted model to this directory, and index with it.")
@click.option("--analyzer", default=DEFAULT_ANALYZER, show_default=True, type=click.Choice(sorted(ANALYZERS)),
              help="Lexical analysis of the BM25 side (documents and queries): the featuriser's tokens, stop "
                   "words and Snowball stems of the language; simple: tokens only. Recorded in the index.")
@click.option("--quiet", is_flag=True, help="No progress line.")
@click.option("--es-index", help="Also (or, without --out, only) build this Elasticsearch alias: a new NAME-<timestamp> index, then an atomic alias swap.")
@click.option("--es-url", help="Elasticsearch URL (default $DSSM_ES_URL or http://127.0.0.1:9200); credentials from DSSM_ES_API_KEY or DSSM_ES_USER/DSSM_ES_PASSWORD, CA from DSSM_ES_CA_CERTS.")
@click.option("--keep-old", is_flag=True, help="Keep the index the alias served before (default: delete it after the swap).")
@click.option("--force", is_flag=True, help="Replace an --out (or --adapt) directory that holds something else (a model, a tag index, other files), or an Elasticsearch index/alias not built by dssm-search or with other dims.")
@click.option("--es-analyzer", help="Override the Elasticsearch analyzer of title/text (default: the dssm plugin's dssm_<--analyzer>, the embedded index's analysis; without the plugin Elasticsearch's own english/russian, standard for simple, with a warning).")
@click.option("--hnsw-m", default=16, show_default=True, type=int, help="HNSW graph degree of the dense_vector field.")
@click.option("--hnsw-ef-construction", default=100, show_default=True, type=int, help="HNSW build beam width.")
@click.option("--max-rejects", default=0, show_default=True, type=int, help="Rejected documents tolerated; more fail the build (alias unchanged).")
@click.option("--rejects", type=click.Path(dir_okay=False), help="JSONL file for rejected documents (default ./<es index>.rejects.jsonl).")
@tagging_options
@user_errors
def index_build(model, corpus, out, n_trees, search_k, on_duplicate, on_disk_build, batch_size, passages, adapt_dir,
                analyzer, quiet, with_tags, tag_k, tag_min_similarity, **es_options):
    """Encode CORPUS with MODEL and write an embedded index to OUT."""
    import time

    from indexer.build import build_index
    from indexer.passages import parse_passages

    try:
        passages = parse_passages(passages)
    except ValueError as error:
        raise UsageError(str(error)) from None
    tagging = tagging_of(with_tags, tag_k, tag_min_similarity)
    es_connection = es_connect_for_build(out, es_options, analyzer)  # fails fast, before any encoding
    if out is not None:
        from dssm.export import check_output
        from indexer.build import DOCUMENT_INDEX

        check_output(out, DOCUMENT_INDEX, es_options["force"])  # before adapting or encoding
    if adapt_dir is not None:
        run_adaptation(model, corpus, adapt_dir, quiet, force=es_options["force"])
        model = adapt_dir
    if out is None:
        return es_build(es_connection, model, corpus, None, on_duplicate, batch_size, quiet, tagging=tagging,
                        passages=passages, **es_options)
    start, progress = time.perf_counter(), ProgressPrinter(quiet)
    manifest = build_index(model, corpus, out, n_trees=n_trees, search_k=search_k, on_duplicate=on_duplicate,
                           on_disk_build=on_disk_build, batch_size=batch_size, progress=progress, tagging=tagging,
                           passages=passages, analyzer_name=analyzer, force=es_options["force"])
    progress.finish()
    click.echo(index_summary(manifest, time.perf_counter() - start, out))
    if es_connection is not None:
        es_build(es_connection, model, corpus, out, on_duplicate, batch_size, quiet, **es_options)


@index.command("add")
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory.")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="Documents to add (JSONL/TSV/CSV).")
@click.option("--model", type=click.Path(file_okay=False), help="Model directory (default: the one the index was built with).")
@click.option("--on-duplicate", default="error", show_default=True,
              help="Ids already indexed or repeated: error | last (replace) | first (keep the indexed one).")
@click.option("--analyzer", type=click.Choice(sorted(ANALYZERS)),
              help="Refuse the update unless the index was built with this lexical analyzer (default: use the index's).")
@click.option("--quiet", is_flag=True, help="No progress line.")
@tagging_options
@user_errors
def index_add(index_dir, corpus, model, on_duplicate, analyzer, quiet, with_tags, tag_k, tag_min_similarity):
    """Add (or replace) documents without re-encoding the rest; BM25 and Annoy are rebuilt.

    New documents are tagged with --with-tags, else as the index was (its build's --with-tags), if it was."""
    import time

    from indexer.build import add_documents

    start, progress = time.perf_counter(), ProgressPrinter(quiet)
    manifest = add_documents(index_dir, corpus, model_dir=model, on_duplicate=on_duplicate, progress=progress,
                             tagging=tagging_of(with_tags, tag_k, tag_min_similarity), analyzer_name=analyzer)
    progress.finish()
    click.echo(index_summary(manifest, time.perf_counter() - start, index_dir))


@index.command("delete")
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory.")
@click.option("--ids-file", type=click.File("r", encoding="utf-8"), help="File with one id per line.")
@click.argument("ids", nargs=-1)
@user_errors
def index_delete(index_dir, ids_file, ids):
    """Delete documents by id (arguments and/or --ids-file)."""
    import time

    from indexer.build import delete_documents

    wanted = list(ids) + ([line.strip() for line in ids_file if line.strip()] if ids_file else [])
    if not wanted:
        raise UsageError("no ids given; pass ids as arguments or --ids-file FILE")
    start = time.perf_counter()
    manifest = delete_documents(index_dir, wanted)
    click.echo(index_summary(manifest, time.perf_counter() - start, index_dir))


@index.command("verify")
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory.")
@user_errors
def index_verify(index_dir):
    """Recompute every file's sha256 against the manifest (search hashes each file once per file identity
    and remembers it; this never trusts that memory)."""
    from pathlib import Path

    from indexer.manifest import read_manifest, verify_files

    manifest = read_manifest(index_dir)
    verify_files(Path(index_dir), manifest, "full")
    click.echo(f"{index_dir}: {len(manifest['files'])} files match their checksums; "
               f"model fingerprint {manifest['model']['fingerprint']}")


def printable(text: str) -> str:
    """One table cell: control characters (newline, tab, NUL, escape, ...) shown as U+FFFD, so an id
    or title can neither break the table's lines nor send codes to the terminal."""
    return "".join("\ufffd" if unicodedata.category(char) in ("Cc", "Cf") and char != "\u200d" else char
                   for char in text)


def print_hits(fused, titles: dict, as_json: bool, explain: bool, tags: dict | None = None,
               passages: dict | None = None) -> None:
    """A table (rank, id, title, score) or JSON lines; with explain, each side's share of the score.

    tags: document id -> [(tag, similarity)] (index build --with-tags); when any hit has tags, every JSON
    record gets "tags" and the table a tags line under each tagged hit.
    passages: document id -> (text, cosine) of the passage that gave its semantic score (--explain)."""
    for rank, (doc_id, score) in enumerate(fused.hits, 1):
        explanation = fused.explanations[rank - 1]
        if as_json:
            record = {"rank": rank, "id": doc_id, "title": titles.get(doc_id, ""), "score": score}
            if tags:
                record["tags"] = [[tag, similarity] for tag, similarity in tags.get(doc_id, [])]
            if explain:
                record["explain"] = explanation.as_dict()
                if passages and doc_id in passages:
                    record["explain"]["passage"] = {"text": passages[doc_id][0], "cosine": passages[doc_id][1]}
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        click.echo(f"{rank:>4}  {score:>9.4f}  {printable(doc_id[:40]):<40}  {printable(titles.get(doc_id, '')[:60])}")
        if tags and tags.get(doc_id):
            click.echo(f"{'':17}tags     " + ", ".join(f"{tag} {similarity:.2f}" for tag, similarity in tags[doc_id]))
        if explain:
            for side in ("lexical", "semantic"):
                part = getattr(explanation, side)
                if part is not None and part.rank is not None:
                    click.echo(f"{'':17}{side:<8} score {part.score:.4f} rank {part.rank} "
                               f"-> {part.normalised:.4f} x {part.weight:g} = {part.part:.4f}")
                elif part is not None:
                    click.echo(f"{'':17}{side:<8} missing -> {part.normalised:.4f} x {part.weight:g} = {part.part:.4f}")
            if passages and doc_id in passages:
                text, cosine = passages[doc_id]
                click.echo(f"{'':17}passage  cosine {cosine:.4f}: {printable(text[:100])}")
            click.echo(f"{'':17}fused    {explanation.formula()}")


@main.command()
@click.option("--index", "index_dir", type=click.Path(), help="Index directory (dssm index build --out); with --backend es: semantic side from its Annoy.")
@click.option("--backend", default="embedded", show_default=True, type=click.Choice(["embedded", "es", "es-plugin"]), help="embedded (--index), es: Elasticsearch BM25 + kNN, fused here, or es-plugin: one request, embedded and fused in Elasticsearch (dssm es upload-model first).")
@click.option("--es-index", help="Elasticsearch alias or index (dssm index build --es-index).")
@click.option("--es-url", help="Elasticsearch URL (default $DSSM_ES_URL or http://127.0.0.1:9200); credentials from DSSM_ES_API_KEY or DSSM_ES_USER/DSSM_ES_PASSWORD, CA from DSSM_ES_CA_CERTS.")
@click.option("--filter", "es_filter", help='ES query DSL (JSON) applied to both sides, e.g. \'{"term": {"id": "abc"}}\' (--backend es).')
@click.option("--model", type=click.Path(file_okay=False), help="Model directory (default: the one the index was built with).")
@click.option("--mode", default="hybrid", show_default=True, help="hybrid | lexical (BM25 only) | semantic (vectors only).")
@click.option("--fusion", default="linear", show_default=True, help="linear (alpha, norm) | rrf (rrf-k). Fusion options not given come from the index's tuned setting (dssm tune-fusion), if any.")
@click.option("--alpha", default=0.5, show_default=True, type=float, help="Linear fusion weight of the semantic side, in [0, 1].")
@click.option("--norm", default="zscore", show_default=True, help="Score normalisation for linear fusion: zscore | minmax.")
@click.option("--rrf-k", default=60, show_default=True, type=int, help="RRF rank constant.")
@click.option("--k", default=10, show_default=True, type=int, help="Hits to return.")
@click.option("--candidates", default=50, show_default=True, type=int, help="Hits taken from each side before fusion (or the tuned setting's).")
@click.option("--search-k", type=click.IntRange(-1, 2**31 - 1), help="Annoy search_k (default: the index's).")
@click.option("--exact-rerank", is_flag=True, help="Re-score semantic candidates exactly from the stored vectors.")
@click.option("--min-similarity", type=click.FloatRange(-1, 1), help="Drop semantic hits whose cosine is below this.")
@click.option("--max-far", type=click.FloatRange(0, 1, min_open=True), help="Drop semantic hits below the cosine threshold of this false-accept rate, stored by `dssm calibrate` (e.g. 0.001).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
@click.option("--explain", is_flag=True, help="Show each side's score, rank and share of the fused score.")
@click.option("--verify", is_flag=True, help="Recompute every index file's full sha256 first (default: the whole of each file, hashed once per file identity and remembered).")
@click.option("--tag", "tags", multiple=True, help="Only documents carrying this tag (index build --with-tags); repeat it: a document must carry all.")
@click.argument("query")
@user_errors
def search(index_dir, model, query, as_json, explain, verify, min_similarity, max_far, tags, **options):
    """Search the index for QUERY (hybrid BM25 + DSSM vectors by default)."""
    if es_search_requested(index_dir, options):
        if min_similarity is not None or max_far is not None:
            raise UsageError("--min-similarity and --max-far need --backend embedded")
        return es_search(index_dir, model, query, as_json, explain, tags=tags, **options)
    from indexer.calibration import stored_threshold
    from indexer.query import HybridSearcher, SearchOptions, check_query
    from indexer.tags import TagFilter

    given = typed_options(options, SearchOptions)  # the others: the index's tuned fusion, else the defaults
    SearchOptions(**given, min_similarity=min_similarity).check()
    check_query(query)
    searcher = HybridSearcher.open(index_dir, model_dir=model, verify="full" if verify else "quick")
    if max_far is not None:
        min_similarity = stored_threshold(searcher.backend.manifest, max_far, min_similarity)
    fused = searcher.search(query, **given, min_similarity=min_similarity, filter=TagFilter.of(tags))
    passages = searcher.matched_passages(query, fused.hits.ids) if explain else None
    print_hits(fused, searcher.titles(fused.hits.ids), as_json, explain, searcher.tags(fused.hits.ids), passages)
    if not fused.hits and not as_json:
        click.echo("no hits", err=True)


# --- evaluation (indexer/evaluate.py, judgements.py, tuning.py, calibration.py, typos.py) ----

def typed_options(options: dict, dataclass_type) -> dict:
    """The options of `dataclass_type`'s fields that the user typed (not click defaults)."""
    import dataclasses

    from click.core import ParameterSource

    context, fields = click.get_current_context(), {field.name for field in dataclasses.fields(dataclass_type)}
    return {name: value for name, value in options.items()
            if name in fields and context.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}


def evaluation_inputs(command):
    """--index, --queries, --qrels, --model, --backend, --es-url: shared by evaluate, tune-fusion and calibrate."""
    options = [
        click.option("--index", "index_dir", required=True, type=click.Path(),
                     help="Index directory (dssm index build --out); with --backend es, the Elasticsearch alias (its --es-index)."),
        click.option("--queries", required=True, type=click.Path(dir_okay=False), help='JSONL {"qid", "query"} lines (or qid<TAB>query).'),
        click.option("--qrels", required=True, type=click.Path(dir_okay=False), help="Lines qid doc_id rel (or TREC qid 0 doc_id rel); rel > 0 is relevant."),
        click.option("--model", type=click.Path(file_okay=False), help="Model directory (default: the one the index was built with)."),
        click.option("--backend", default="embedded", show_default=True,
                     help="embedded | es (evaluate only: Elasticsearch's BM25 and kNN, the same fusion)."),
        click.option("--es-url", help="Elasticsearch URL with --backend es (default $DSSM_ES_URL or http://127.0.0.1:9200)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def open_judged(backend, index_dir, model, queries, qrels, es_url=None, command=None):
    """(searcher, judgements); problems found in the files are printed on stderr, never hidden.
    `command`: the caller when it stores results in an embedded index (then --backend es is refused).
    With --backend es, call it inside `evaluation_errors`."""
    from indexer.evaluate import document_ids, open_searcher
    from indexer.judgements import Judgements, read_qrels, read_queries

    if backend not in ("embedded", "es"):
        raise UsageError(f"--backend {backend} cannot be evaluated; use embedded or es (the es-plugin endpoint "
                         f"searches the same Elasticsearch index: evaluate it with --backend es)")
    if backend != "es" and es_url:
        raise UsageError("--es-url needs --backend es")
    if backend == "es" and command:
        raise UsageError(f"{command} stores its result in an embedded index; run it with --backend embedded")
    queries, qrels = read_queries(queries), read_qrels(qrels)  # bad files fail before the index opens
    if backend == "es":                       # ES cannot cheaply list its ids: ask for the judged ones
        from indexer.es_config import load_config
        searcher = es_searcher(index_dir, model, load_config(url=es_url))
        ids = searcher.backend.present(doc_id for judged in qrels.values() for doc_id in judged)
    else:
        searcher = open_searcher(backend, index_dir, model)
        ids = document_ids(searcher)
    judged = Judgements.check(queries, qrels, ids)
    for line in judged.warnings():
        click.echo(f"warning: {line}", err=True)
    return searcher, judged


@main.command()
@evaluation_inputs
@click.option("--modes", default="lexical,semantic,hybrid", show_default=True, help="Comma-separated: lexical, semantic, hybrid.")
@click.option("--k", default=10, show_default=True, type=click.IntRange(min=1), help="Cutoff of nDCG and MRR.")
@click.option("--metrics", help="Comma-separated, e.g. ndcg@10,mrr@10,recall@100,map,precision@5 (default: ndcg@K,mrr@K,recall@DEPTH,map).")
@click.option("--depth", default=100, show_default=True, type=click.IntRange(min=1), help="Hits per query in a run, and candidates taken from each side.")
@click.option("--fusion", help="Hybrid fusion linear | rrf (default: the index's tuned setting, else linear).")
@click.option("--alpha", type=float, help="Linear fusion weight of the semantic side (default: tuned, else 0.5).")
@click.option("--norm", help="zscore | minmax (default: tuned, else zscore).")
@click.option("--rrf-k", type=int, help="RRF rank constant (default: tuned, else 60).")
@click.option("--typos", is_flag=True, help="Also evaluate typo'd queries (swap, drop or insert a letter) and report the loss.")
@click.option("--typos-per", default="word", show_default=True, type=click.Choice(["word", "query"]), help="An edit in every word of 4+ letters, or in one such word per query.")
@click.option("--typo-seed", default=13, show_default=True, type=int, help="Seed of the typo generator.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Write TREC run files <mode>.run (and <mode>.typos.run) here.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
@user_errors
def evaluate(index_dir, queries, qrels, model, backend, es_url, modes, k, metrics, depth, typos, typos_per, typo_seed,
             run_dir, as_json, **fusion):
    """Measure nDCG@K, MRR@K, Recall@DEPTH and MAP of each search mode on QUERIES judged by QRELS."""
    from indexer import evaluate as evaluation
    from indexer.typos import typo_queries

    measures = evaluation.parse_metrics(metrics or f"ndcg@{k},mrr@{k},recall@{depth},map")
    modes = evaluation.check_modes(part.strip() for part in modes.split(",") if part.strip())
    with evaluation_errors(backend, es_url):
        searcher, judged = open_judged(backend, index_dir, model, queries, qrels, es_url)
        options = evaluation.run_options(searcher.defaults, depth, **fusion)
        report = {"queries": judged.counts(), "depth": depth, "fusion": evaluation.describe_fusion(options),
                  "scores": evaluation.evaluate(searcher, judged.queries, judged.qrels, modes, measures, depth, options, run_dir)}
        if typos:
            typo_scores = evaluation.evaluate(searcher, typo_queries(judged.queries, typo_seed, per=typos_per), judged.qrels,
                                              modes, measures, depth, options, run_dir, run_suffix=".typos")
            report.update(typos_per=typos_per, typos=typo_scores,
                          typo_loss=evaluation.typo_losses(report["scores"], typo_scores))
    click.echo(json.dumps(report, indent=2) if as_json else evaluation.format_report(report))


def es_searcher(alias, model, config):
    """A HybridSearcher over the Elasticsearch alias (BM25 and kNN there), queries embedded here;
    `config` from indexer.es_config.load_config."""
    from indexer.es_config import connect
    from indexer.es_index import EsIndex
    from indexer.query import HybridSearcher

    es = EsIndex.open(connect(config), alias)
    encoder = es_encoder(model, es)
    es.check_model(encoder.fingerprint, encoder.dim)
    return HybridSearcher(es, encoder)


def evaluation_errors(backend, es_url):
    """Elasticsearch failures of an evaluation as one line, exit 1 (EsErrors); nothing for embedded."""
    import contextlib

    from indexer.es_config import load_config

    return EsErrors(load_config(url=es_url)) if backend == "es" else contextlib.nullcontext()


@main.command("tune-fusion")
@evaluation_inputs
@click.option("--metric", default="ndcg@10", show_default=True, help="What the sweep maximises (ndcg@K, mrr@K, recall@K, map).")
@click.option("--holdout", default=0.5, show_default=True, type=float, help="Fraction of the judged queries kept out of the sweep to score the chosen setting honestly (0: tune on all).")
@click.option("--seed", default=13, show_default=True, type=int, help="Seed of the tune / held-out split.")
@click.option("--candidates", default=100, show_default=True, type=click.IntRange(min=1), help="Hits taken from each side; stored with the setting, so search uses it too.")
@click.option("--dry-run", is_flag=True, help="Print the result; leave the manifest as it is.")
@click.option("--json", "as_json", is_flag=True, help="Print the result and the whole sweep as JSON.")
@user_errors
def tune_fusion(index_dir, queries, qrels, model, backend, es_url, metric, holdout, seed, candidates, dry_run, as_json):
    """Sweep linear (alpha 0..1 by 0.05, minmax | zscore) and rrf (rank constant) fusion; store the best in the index."""
    from indexer.evaluate import retrieve_candidates, run_options
    from indexer.query import SearchOptions
    from indexer.tuning import format_result, save_fusion, split_queries
    from indexer.tuning import tune_fusion as sweep

    searcher, judged = open_judged(backend, index_dir, model, queries, qrels, es_url, command="tune-fusion")
    tune, held_out = split_queries(judged.queries, holdout, seed)
    pool = retrieve_candidates(searcher, judged.queries, candidates, run_options(SearchOptions(), candidates))
    result = sweep(pool, judged.qrels, tune, held_out, metric, candidates)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else format_result(result))
    if not dry_run:
        save_fusion(index_dir, result, source=f"{queries} (holdout {holdout:g}, seed {seed})")
        if not as_json:
            click.echo(f"\nstored in {index_dir}/manifest.json: `dssm search` now uses it unless given --fusion/--alpha/...")


@main.command()
@evaluation_inputs
@click.option("--non-pairs", default=100, show_default=True, type=click.IntRange(min=1), help="Random non-relevant documents drawn per query.")
@click.option("--seed", default=13, show_default=True, type=int, help="Seed of the non-pair draw.")
@click.option("--dry-run", is_flag=True, help="Print the result; leave the manifest as it is.")
@user_errors
def calibrate(index_dir, queries, qrels, model, backend, es_url, non_pairs, seed, dry_run):
    """VAL@FAR (FaceNet) of the vectors on held-out QUERIES; store the cosine threshold of each FAR in the index."""
    from indexer.calibration import calibrate as measure
    from indexer.calibration import format_calibration, pair_cosines, save_calibration

    searcher, judged = open_judged(backend, index_dir, model, queries, qrels, es_url, command="calibrate")
    if not hasattr(searcher.backend, "vectors"):
        raise UsageError(f"calibration needs the index's vectors; backend {backend} has none here")
    positives, negatives = pair_cosines(searcher.backend, searcher.encoder, judged.queries, judged.qrels, non_pairs, seed)
    section = {**measure(positives, negatives), "queries": f"{queries} (seed {seed})"}
    click.echo(format_calibration(section))
    if not dry_run:
        save_calibration(index_dir, section)
        click.echo(f"\nstored in {index_dir}/manifest.json: use it with `dssm search --max-far 0.001`")


# --- tagging and near-duplicates (indexer/tags.py, indexer/dedup.py) --------------------------

@main.group()
def tag() -> None:
    """Zero-shot and one-shot tagging: texts (query tower) and tags (document tower) in one space."""


@tag.command("index")
@click.option("--model", required=True, type=click.Path(file_okay=False), help="Model directory (dssm train --out).")
@click.option("--tags", "tags_file", required=True, type=click.Path(dir_okay=False), help="Tags: one per line (or JSONL {tag}), or the tags used in a tagged JSONL {text, tags} file.")
@click.option("--out", required=True, type=click.Path(), help="Tag index directory to write (replaced atomically).")
@click.option("--tag-examples", type=click.Path(dir_okay=False), help='One-shot tags: JSONL {"tag", "example"}; such a tag is the mean of its examples\' vectors (tags not in --tags are added).')
@click.option("--n-trees", default=50, show_default=True, type=click.IntRange(1, 10_000), help="Annoy trees (used above 20,000 tags; below, search is exact).")
@click.option("--search-k", default=20000, show_default=True, type=click.IntRange(-1, 2**31 - 1), help="Default Annoy search_k stored in the tag index.")
@click.option("--force", is_flag=True, help="Replace an --out that holds something other than a tag index.")
@user_errors
def tag_index(model, tags_file, out, tag_examples, n_trees, search_k, force):
    """Embed every tag of TAGS with MODEL and write a tag index to OUT."""
    import time

    from indexer.tags import build_tag_index, read_tag_examples, read_tags

    start, tags = time.perf_counter(), read_tags(tags_file)
    examples = read_tag_examples(tag_examples) if tag_examples else None
    manifest = build_tag_index(model, tags, out, examples=examples, n_trees=n_trees, search_k=search_k, force=force)
    counts = manifest["counts"]
    click.echo(f"{out}: {counts['tags']:,} tags ({counts['one_shot']:,} one-shot from examples), "
               f"{manifest['model']['dim']} dims, in {time.perf_counter() - start:.1f} s")


@tag.command("predict")
@click.option("--tags-index", required=True, type=click.Path(), help="Tag index directory (dssm tag index --out).")
@click.option("--model", type=click.Path(file_okay=False), help="Model directory (default: the one the tag index was built with).")
@click.option("--corpus", type=click.Path(dir_okay=False), help='Batch mode: tag every document of a JSONL {id, title, text} (or TSV/CSV) file; writes JSON lines {"id", "tags"}.')
@click.option("--k", default=5, show_default=True, type=click.IntRange(min=1), help="Tags per text.")
@click.option("--min-similarity", type=click.FloatRange(-1, 1), help="Drop tags whose cosine with the text is below this.")
@click.option("--json", "as_json", is_flag=True, help='One JSON object per text: {"text", "tags": [[tag, similarity], ...]}.')
@click.argument("texts", nargs=-1)
@user_errors
def tag_predict(tags_index, model, corpus, k, min_similarity, as_json, texts):
    """Print the best K tags of each TEXT (or of each document of --corpus)."""
    from indexer.tags import open_tag_index, predict_corpus

    if bool(texts) == bool(corpus):
        raise UsageError("give TEXTS to tag, or --corpus FILE, not both")
    index = open_tag_index(tags_index, model)
    if corpus:
        for doc_id, tags in predict_corpus(index, corpus, k, min_similarity):
            click.echo(json.dumps({"id": doc_id, "tags": tags}, ensure_ascii=False))
        return
    for text, tags in zip(texts, index.predict(list(texts), k, min_similarity)):
        if as_json:
            click.echo(json.dumps({"text": text, "tags": tags}, ensure_ascii=False))
            continue
        if len(texts) > 1:
            click.echo(text)
        for name, similarity in tags:
            click.echo(f"  {similarity:>7.4f}  {name}")
        if not tags:
            click.echo("  no tags", err=True)


@tag.command("evaluate")
@click.option("--tags-index", required=True, type=click.Path(), help="Tag index directory (dssm tag index --out).")
@click.option("--test", "test_file", required=True, type=click.Path(dir_okay=False), help="Held-out tagged texts: JSONL {text, tags}.")
@click.option("--unseen", type=click.Path(dir_okay=False), help="Tags held out of training (one per line): scored apart from the seen ones.")
@click.option("--model", type=click.Path(file_okay=False), help="Model directory (default: the one the tag index was built with).")
@click.option("--k", default=5, show_default=True, type=click.IntRange(min=1), help="Tags predicted per text.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def tag_evaluate(tags_index, test_file, unseen, model, k, as_json):
    """P@K and R@K of the tag index on TEST: seen and unseen tags, restricted and generalised ranking."""
    from dssm.tagdata import load_tagged, read_tag_list
    from indexer.tag_eval import cosine_scorer, evaluate_tagging
    from indexer.tags import open_tag_index

    index, test = open_tag_index(tags_index, model), load_tagged(test_file)
    report = evaluate_tagging(cosine_scorer(index.encoder, index.vectors), index.tags, test.texts, test.tags,
                              read_tag_list(unseen) if unseen else [], k)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{'ranking':<12} {'tags':<7} {f'P@{k}':>7} {f'R@{k}':>7} {'texts':>6}")
    for protocol, kinds in report.items():
        for kind, row in kinds.items():
            if row["texts"]:
                click.echo(f"{protocol:<12} {kind:<7} {row[f'P@{k}']:>7.4f} {row[f'R@{k}']:>7.4f} {row['texts']:>6}")


@main.command()
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory (dssm index build --out).")
@click.option("--threshold", type=click.FloatRange(-1, 1), help="Report pairs whose cosine is at least this (default 0.95).")
@click.option("--max-far", type=click.FloatRange(0, 1, min_open=True), help="Threshold of this false-accept rate, stored by `dssm calibrate` (instead of --threshold).")
@click.option("--k", default=10, show_default=True, type=click.IntRange(min=1), help="Neighbours looked at per document.")
@click.option("--search-k", type=click.IntRange(min=1), help="Annoy search_k above 20,000 documents (default 2000; below, the search is exact).")
@click.option("--json", "as_json", is_flag=True, help='One JSON object per pair: {"a", "b", "similarity"}.')
@user_errors
def dedup(index_dir, threshold, max_far, k, search_k, as_json):
    """List near-duplicate document pairs of an index (from its stored vectors), most similar first."""
    from indexer.dedup import dedup_threshold, near_duplicates
    from indexer.embedded import EmbeddedIndex

    index = EmbeddedIndex.open(index_dir)
    threshold = dedup_threshold(index.manifest, threshold, max_far)
    pairs = near_duplicates(index, threshold, k, search_k=search_k)
    titles = index.titles({doc_id for pair in pairs for doc_id in (pair.a, pair.b)}) if not as_json else {}
    for pair in pairs:
        if as_json:
            click.echo(json.dumps(pair.as_dict(), ensure_ascii=False))
        else:
            click.echo(f"{pair.similarity:.4f}  {pair.a[:30]:<30}  {pair.b[:30]:<30}  {titles.get(pair.a, '')[:40]}")
    click.echo(f"{len(pairs):,} pair{'' if len(pairs) == 1 else 's'} with cosine >= {threshold:g} among "
               f"{len(index):,} documents", err=True)


# --- Elasticsearch (indexer/es_*.py) ---------------------------------------------------------


class EsErrors:
    """`with EsErrors(config):` Elasticsearch down, refused credentials, failed build -> one line, exit 1."""

    def __init__(self, config) -> None:
        self.config = config

    def __enter__(self) -> "EsErrors":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        from elasticsearch import ApiError, TransportError

        from indexer.es_config import EsError, describe_error

        if isinstance(error, EsError):
            raise click.ClickException(str(error)) from None
        if isinstance(error, (ApiError, TransportError)):
            raise click.ClickException(describe_error(error, self.config)) from None
        return False


def es_connect_for_build(out, es_options: dict, analyzer: str):
    """`(client, config, analysis)` when --es-index is given (server and the analyzer of --analyzer or
    --es-analyzer checked now, before any encoding; a warning when it is not the dssm plugin's), else None."""
    from indexer.es_config import connect, load_config
    from indexer.es_index import resolve_analysis

    if out is None and not es_options["es_index"]:
        raise UsageError("nothing to build: give --out DIR (embedded index) and/or --es-index NAME (Elasticsearch)")
    if not es_options["es_index"]:
        return None
    config = load_config(url=es_options["es_url"])
    with EsErrors(config):
        client = connect(config)
        analysis = resolve_analysis(client, analyzer, es_options["es_analyzer"])
    if analysis.warning():
        click.echo(analysis.warning(), err=True)
    return client, config, analysis


def es_build(connection, model, corpus, out, on_duplicate, batch_size, quiet, tagging=None, passages=None,
             **es_options) -> None:
    """Push the embedded index just built at OUT (same vectors, tags and passages), or encode (and tag)
    CORPUS and its `passages`, into --es-index."""
    import os

    from indexer.es_documents import from_corpus, from_embedded_index
    from indexer.es_index import IndexOptions, build

    client, config, analysis = connection
    if out is not None:
        model_info, rows = from_embedded_index(out)
    else:
        from dssm.export import load_encoder

        encoder = load_encoder(model)
        model_info = {"fingerprint": encoder.fingerprint, "dim": encoder.dim, "path": os.path.abspath(model)}
        from indexer.build import open_tagging

        rows = from_corpus(corpus, encoder, on_duplicate, batch_size, tagger=open_tagging(tagging, encoder),
                           passages=passages)
    options = IndexOptions(dims=model_info["dim"], analyzer=analysis.analyzer,
                           search_analyzer=analysis.search_analyzer, bm25=analysis.meta(),
                           m=es_options["hnsw_m"], ef_construction=es_options["hnsw_ef_construction"],
                           passages=model_info.get("passages", passages))
    progress = ProgressPrinter(quiet, "sent {done:,} docs to Elasticsearch ({rate:,.0f} docs/s)")
    with EsErrors(config):
        report = build(client, es_options["es_index"], rows, model_info["fingerprint"], options,
                       keep_old=es_options["keep_old"], force=es_options["force"],
                       rejects_path=es_options["rejects"], max_rejects=es_options["max_rejects"],
                       extra_meta={"model_path": model_info["path"]}, progress=progress, timeout=config.timeout)
    progress.finish()
    click.echo(report.summary())


def es_search_requested(index_dir, options: dict) -> bool:
    """True for --backend es or es-plugin; refuses Elasticsearch-only options (and a missing --index) otherwise."""
    if options["backend"] in ("es", "es-plugin"):
        return True
    if options["es_filter"] or options["es_index"]:
        raise UsageError("--filter and --es-index need --backend es")
    if index_dir is None:
        raise UsageError("--index is required with --backend embedded (or use --backend es --es-index NAME)")
    return False


def es_search(index_dir, model, query, as_json, explain, **options) -> None:
    """`dssm search --backend es`: ES BM25 + ES kNN (or the local Annoy of --index), same fusion."""
    from indexer.es_config import load_config
    from indexer.es_index import SplitBackend
    from indexer.query import HybridSearcher, SearchOptions, check_query

    if options["backend"] == "es-plugin":
        return es_plugin_search(index_dir, model, query, as_json, explain, **options)
    if not options["es_index"]:
        raise UsageError("--backend es needs --es-index NAME (the alias given to dssm index build --es-index)")
    search_options = SearchOptions(mode=options["mode"], fusion=options["fusion"], alpha=options["alpha"],
                                   norm=options["norm"], rrf_k=options["rrf_k"], k=options["k"],
                                   candidates=options["candidates"], search_k=options["search_k"],
                                   exact_rerank=options["exact_rerank"])
    search_options.check()
    check_query(query)
    es_filter = es_filters(options)
    if index_dir is not None and es_filter is not None:
        raise UsageError("--filter and --tag filter Elasticsearch's hits; drop --index (its local Annoy side cannot apply them)")
    config = load_config(url=options["es_url"])
    with EsErrors(config):
        searcher = es_searcher(options["es_index"], model, config)
        if index_dir is not None:
            local = HybridSearcher.open(index_dir, model_dir=model, encoder=searcher.encoder)
            searcher = HybridSearcher(SplitBackend(searcher.backend, local.backend), searcher.encoder)
        fused = searcher.search(query, search_options, filter=es_filter)
        print_hits(fused, searcher.titles(fused.hits.ids), as_json, explain, searcher.tags(fused.hits.ids))
    if not fused.hits and not as_json:
        click.echo("no hits", err=True)


def es_encoder(model, es):
    """The query encoder: --model, else the model recorded in the index's `_meta` at build time."""
    import os

    from dssm.export import load_encoder

    model_dir = model or es.meta.get("model_path")
    if not model_dir or not os.path.isdir(model_dir):
        raise UsageError(f"model {model_dir or '(none recorded)'} of index {es.name} is not here; "
                         f"pass --model with the model the index was built with")
    return load_encoder(model_dir)


def parse_filter(text):
    """--filter: one ES query DSL object as JSON, or None."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"--filter is not valid JSON ({error.msg}); give a query such as "
                         f"'{{\"term\": {{\"id\": \"abc\"}}}}'") from None
    if not isinstance(value, dict) or not value:
        raise UsageError("--filter must be one JSON object of ES query DSL, e.g. '{\"term\": {\"id\": \"abc\"}}'")
    return value


def es_filters(options: dict) -> dict | None:
    """--filter and --tag (all given tags) as one Elasticsearch filter; None when neither is given."""
    from indexer.tags import TagFilter

    tag_filter = TagFilter.of(options.get("tags") or ())
    filters = [part for part in (parse_filter(options["es_filter"]), tag_filter and tag_filter.es_query()) if part]
    return None if not filters else filters[0] if len(filters) == 1 else {"bool": {"filter": filters}}


def es_plugin_search(index_dir, model, query, as_json, explain, **options) -> None:
    """`dssm search --backend es-plugin`: one request to the plugin (es-plugin/README.md), which embeds
    QUERY in Java and fuses BM25 and kNN in Elasticsearch. --model names an uploaded model
    (dssm es upload-model); without it, the one whose fingerprint the index was built with."""
    from indexer import es_plugin
    from indexer.es_config import connect, load_config
    from indexer.query import SearchOptions, check_query

    if not options["es_index"]:
        raise UsageError("--backend es-plugin needs --es-index NAME (the alias given to dssm index build --es-index)")
    if index_dir is not None or options["mode"] != "hybrid" or options["exact_rerank"]:
        raise UsageError("--backend es-plugin searches hybrid in Elasticsearch only; for --index, --mode or "
                         "--exact-rerank use --backend es")
    if model is not None and not es_plugin.MODEL_NAME.fullmatch(model):
        raise UsageError(f"with --backend es-plugin, --model is the name of an uploaded model "
                         f"(dssm es upload-model NAME DIR), not {model!r}")
    SearchOptions(fusion=options["fusion"], alpha=options["alpha"], norm=options["norm"], rrf_k=options["rrf_k"],
                  k=options["k"], candidates=options["candidates"]).check()
    check_query(query)
    config = load_config(url=options["es_url"])
    with EsErrors(config):
        response = es_plugin.search(
            connect(config), options["es_index"], query, size=options["k"], model=model, fusion=options["fusion"],
            alpha=options["alpha"], norm=options["norm"], rank_constant=options["rrf_k"],
            rank_window_size=max(options["candidates"], options["k"]), num_candidates=options["search_k"],
            filter=es_filters(options), explain=explain)
    fused = es_plugin.fused_from_response(response)
    print_hits(fused, es_plugin.titles(response), as_json, explain)
    if not fused.hits and not as_json:
        click.echo("no hits", err=True)


@main.group("es")
def es_group() -> None:
    """The dssm Elasticsearch plugin's model registry (es-plugin/README.md)."""


ES_URL_HELP = ("Elasticsearch URL (default $DSSM_ES_URL or http://127.0.0.1:9200); credentials from DSSM_ES_API_KEY "
               "or DSSM_ES_USER/DSSM_ES_PASSWORD, CA from DSSM_ES_CA_CERTS.")


@es_group.command("upload-model")
@click.argument("name")
@click.argument("model", type=click.Path(exists=True, file_okay=False))
@click.option("--es-url", help=ES_URL_HELP)
@user_errors
def es_upload_model(name, model, es_url):
    """Upload the exported MODEL directory as NAME (PUT /_dssm/model/NAME); re-uploading replaces it."""
    from indexer import es_plugin
    from indexer.es_config import connect, load_config

    es_plugin.check_model_name(name)
    config = load_config(url=es_url)
    with EsErrors(config):
        answer = es_plugin.upload_model(connect(config), name, model)
    click.echo(f"{answer['result']} model {answer['name']}: fingerprint {answer['fingerprint']}, "
               f"{answer['dims']} dims, {answer['bytes']:,} bytes of weights")


@es_group.command("models")
@click.option("--es-url", help=ES_URL_HELP)
@user_errors
def es_models(es_url):
    """List the models uploaded to the plugin: name, fingerprint, dims."""
    from indexer import es_plugin
    from indexer.es_config import connect, load_config

    config = load_config(url=es_url)
    with EsErrors(config):
        models = es_plugin.list_models(connect(config))
    for model in models:
        click.echo(f"{model['name']:<30} {model['fingerprint']}  {model['dims']} dims")
    if not models:
        click.echo("no models uploaded (dssm es upload-model NAME DIR)", err=True)


if __name__ == "__main__":
    sys.exit(main())
