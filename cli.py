"""The `dssm` command line: a thin click shell over `dssm/` and `indexer/`.

Each command parses its options, calls one library function and prints the result. Usage errors
(bad input the user can fix) exit with code 2 and a one-line message; nothing prints a traceback.
"""
from __future__ import annotations

import sys

import click


class UsageError(click.UsageError):
    """A one-line usage error (exit code 2) raised from library `ValueError`s."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dssm-search")
def main() -> None:
    """dssm-search: train a letter-trigram DSSM, build hybrid (BM25 + vector) indexes, search."""


# --- training and export (dssm/) -------------------------------------------------------------


# --- embedded index and search (indexer/) ----------------------------------------------------


# --- Elasticsearch (indexer/es_*.py) ---------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())
