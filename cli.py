"""The `dssm` command line: a thin click shell over `dssm/` and `indexer/`.

Each command parses its options, calls one library function and prints the result. Usage errors
(bad input the user can fix) exit with code 2 and a one-line message; nothing prints a traceback.
"""
from __future__ import annotations

import functools
import json
import sys

import click


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
@click.option("--pairs", required=True, type=click.Path(dir_okay=False),
              help="JSONL {query, doc_id} pairs (with --corpus) or TSV query<TAB>document.")
@click.option("--corpus", type=click.Path(dir_okay=False), help="JSONL {id, title, text} documents.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model directory to write.")
@click.option("--loss", default="softmax", show_default=True, help="softmax (DSSM) | triplet.")
@click.option("--negatives", default="batch-all", show_default=True,
              help="random | semi-hard | batch-hard | batch-all (all in-batch) | bm25 (offline hard negatives).")
@click.option("--positives", default="random", show_default=True, help="random | hardest, for queries with several positives.")
@click.option("--distance", default="cosine", show_default=True, help="Triplet distance: cosine | sqeuclidean.")
@click.option("--margin", default=0.2, show_default=True, type=float, help="Triplet margin.")
@click.option("--gamma", default=20.0, show_default=True, type=float, help="Softmax smoothing factor.")
@click.option("--layer-weight", default=0.0, show_default=True, type=float, help="Weight of the layer-wise triplet regulariser.")
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--batch-size", default=256, show_default=True, type=int)
@click.option("--lr", "learning_rate", default=2e-3, show_default=True, type=float, help="Adam learning rate.")
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
@click.option("--quiet", is_flag=True, help="One line per epoch instead of a progress bar.")
@user_errors
def train(pairs, corpus, out, layers, buckets, max_features, word_ngrams, asymmetric, resume, skip_missing, quiet, **hyper):
    """Train a DSSM on (query, relevant document) pairs and export it to OUT."""
    from dssm.config import FeaturiserConfig, TowerConfig, TrainConfig

    featuriser = FeaturiserConfig(buckets=buckets, max_features=max_features, word_ngrams=word_ngrams)
    tower = TowerConfig(layers=layers, shared=not asymmetric)
    config = TrainConfig(**hyper)
    from dssm.train import train as run_training                      # imports TensorFlow

    result = run_training(pairs, corpus, out, featuriser, tower, config, resume=resume,
                          skip_missing=skip_missing, verbose=2 if quiet else 1, log=click.echo)
    best = max(result.history.get("val_mrr_at_10", [float("nan")]))
    click.echo(f"trained {result.epochs_run} epochs; best validation MRR@10 {best:.4f}; fingerprint {result.fingerprint}")


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


# --- Elasticsearch (indexer/es_*.py) ---------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())
