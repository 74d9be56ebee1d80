"""Frozen configuration dataclasses: the one home of defaults.

They are saved as JSON next to the weights (`config.json`) and every reader (the numpy encoder, the
Java plugin, index manifests) rebuilds from that JSON. Invalid values raise `ValueError` naming the
field and the fix.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


LOSSES = ("softmax", "triplet")
NEGATIVE_STRATEGIES = ("random", "semi-hard", "batch-hard", "batch-all", "bm25")
POSITIVE_STRATEGIES = ("random", "hardest")
DISTANCES = ("cosine", "sqeuclidean")
OPTIMIZERS = ("adam", "lazy-adam")
KIND_SEARCH, KIND_TAG, KIND_PSEUDO = 0, 1, 2   # pair types: a training batch holds one type only


@dataclass(frozen=True)
class FeaturiserConfig:
    """Letter-trigram word hashing (docs/FORMAT.md section 1)."""

    buckets: int = 32768        # trigram ids are 1..buckets; 0 is padding
    max_features: int = 512     # ids kept per text (the first ones)
    max_chars: int = 20000      # code points of raw text read per text
    word_ngrams: int = 0        # 0: trigrams only; 1: + word unigrams; 2: + word bigrams

    def __post_init__(self) -> None:
        _positive(self, "buckets", "max_features", "max_chars")
        if self.buckets >= 2**31 - 1:
            raise ValueError(f"buckets must be < 2**31 - 1 (ids are int32), got {self.buckets}")
        if self.word_ngrams not in (0, 1, 2):
            raise ValueError(f"word_ngrams must be 0, 1 or 2, got {self.word_ngrams}")


@dataclass(frozen=True)
class TowerConfig:
    """The MLP tower: embedding-bag of trigram ids, then dense layers (Huang et al. 2013: 300-300-128)."""

    layers: tuple[int, ...] = (300, 300, 128)
    activation: str = "tanh"
    combiner: str = "sqrtn"     # embedding-bag: sum of rows / sqrt(number of ids)
    shared: bool = True         # one tower for queries and documents; False = asymmetric towers

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(size) for size in self.layers))
        if not self.layers or any(size <= 0 for size in self.layers):
            raise ValueError(f"every layer size must be >= 1, got {list(self.layers)}; e.g. --layers 300,300,128")
        if self.activation != "tanh":
            raise ValueError(f"activation {self.activation!r} is not supported; use 'tanh'")
        if self.combiner != "sqrtn":
            raise ValueError(f"combiner {self.combiner!r} is not supported; use 'sqrtn'")

    @property
    def dim(self) -> int:
        return self.layers[-1]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (dssm train --help)."""

    loss: str = "softmax"            # softmax | triplet
    negatives: str = "batch-all"     # random | semi-hard | batch-hard | batch-all | bm25
    positives: str = "random"        # random | hardest (when a query has several positives)
    distance: str = "cosine"         # cosine | sqeuclidean (triplet loss)
    margin: float = 0.2
    gamma: float = 20.0              # softmax smoothing factor (DSSM's gamma)
    layer_weight: float = 0.0        # weight of the layer-wise triplet regulariser (0 = off)
    feature_dropout: float = 0.0     # training only: drop each trigram id with this probability
    symmetric: bool = False          # softmax: also rank the batch's queries for each document
    distill_weight: float = 1.0      # with teacher vectors: weight of the in-batch distillation loss
    teacher_gamma: float = 10.0      # sharpness of the teacher's in-batch softmax (5-10 beat 20: BENCHMARKS.md)
    tag_weight: float = 0.2          # loss weight of a batch of (text, tag) pairs beside search pairs (BENCHMARKS.md)
    passage_positives: int = 0       # each labelled pair also trains against its document's first N passages
    passage_window: int = 12         # ... of this many words (the index's default passages: 12:6:2)
    pseudo_queries: str = "none"     # with a corpus: pseudo-query kinds cut from each document (dssm/pseudo.py)
    pseudo_weight: float = 1.0       # loss weight of a batch of (pseudo-query, document) pairs
    epochs: int = 12
    batch_size: int = 512            # more in-batch negatives per query (BENCHMARKS.md: quality runs)
    learning_rate: float = 2e-3
    table_lr_scale: float = 1.0      # lazy-adam: the trigram table's learning rate = this x learning_rate
    optimizer: str = "lazy-adam"     # lazy-adam (only the trigram rows a batch touches: dssm/optim.py) | adam
    val_fraction: float = 0.05
    val_pool: int = 20000            # documents ranked per validation query
    patience: int = 3                # early stopping on validation MRR@10
    bm25_depth: int = 20             # BM25-mined negatives come from this many top hits
    seed: int = 13

    def __post_init__(self) -> None:
        for name, choices in (("loss", LOSSES), ("negatives", NEGATIVE_STRATEGIES),
                              ("positives", POSITIVE_STRATEGIES), ("distance", DISTANCES),
                              ("optimizer", OPTIMIZERS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose from {list(choices)}")
        _positive(self, "epochs", "batch_size", "val_pool", "patience", "bm25_depth", "passage_window")
        if self.passage_positives < 0:
            raise ValueError(f"passage_positives must be >= 0 (0: off), got {self.passage_positives}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number, got {value}")
        if not self.margin >= 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}; try --margin 0.2")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}; try --gamma 20")
        if not self.learning_rate > 0 or not self.table_lr_scale > 0:
            raise ValueError(f"learning rate and table_lr_scale must be > 0, got {self.learning_rate} and "
                             f"{self.table_lr_scale}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.symmetric and self.loss != "softmax":
            raise ValueError("symmetric applies to the softmax loss; drop it or use --loss softmax")
        if not 0 <= self.feature_dropout < 1:
            raise ValueError(f"feature_dropout must be in [0, 1), got {self.feature_dropout}")
        if not (self.distill_weight >= 0 and self.teacher_gamma > 0):
            raise ValueError("distill_weight must be >= 0 and teacher_gamma > 0")
        from dssm.pseudo import parse_kinds
        parse_kinds(self.pseudo_queries)
        if not self.pseudo_weight >= 0:
            raise ValueError(f"pseudo_weight must be >= 0, got {self.pseudo_weight}")
        if not self.tag_weight >= 0:
            raise ValueError(f"tag_weight must be >= 0, got {self.tag_weight}")
        if not self.layer_weight >= 0:
            raise ValueError(f"layer_weight must be >= 0, got {self.layer_weight}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2: negatives come from the batch")


# `dssm adapt` (zero-label domain adaptation): the TrainConfig fields it sets, the rest as TrainConfig's
ADAPT_DEFAULTS = {"pseudo_queries": "first-sentence,span", "epochs": 3, "learning_rate": 3e-4}


def adapt_config(**overrides) -> TrainConfig:
    """The TrainConfig of `dssm adapt`: ADAPT_DEFAULTS, then `overrides`; early stopping never cuts it short."""
    values = {**ADAPT_DEFAULTS, **overrides}
    if values["pseudo_queries"] in ("", "none"):
        raise ValueError("adapting learns from pseudo-queries only; give pseudo_queries such as first-sentence,span")
    return TrainConfig(**values, patience=max(int(values["epochs"]), 1))


TRAINING_COPIES = 4   # each parameter in training: the weight, its gradient, Adam's two moments (float32)


def check_fits_memory(featuriser: FeaturiserConfig, tower: TowerConfig, memory_bytes: int | None = None) -> None:
    """Refuse a model whose training state cannot fit this machine's memory (a traceback from the
    allocator otherwise, minutes later): (buckets + 1) x first layer + the dense layers, TRAINING_COPIES
    float32 each, one tower per side when they are asymmetric."""
    import os

    sizes = tower.layers
    parameters = (featuriser.buckets + 1 + 1) * sizes[0] + sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    needed = parameters * (1 if tower.shared else 2) * TRAINING_COPIES * 4
    memory = memory_bytes or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > memory:
        raise ValueError(f"--buckets {featuriser.buckets} and --layers {','.join(map(str, sizes))} make "
                         f"{parameters:,} parameters, {needed / 2**30:,.1f} GiB to train, more than this machine's "
                         f"{memory / 2**30:,.1f} GiB; choose fewer buckets or smaller layers")


def _positive(config: object, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ValueError(f"{name} must be >= 1, got {value}")


def to_dict(config: object) -> dict:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(config).items()}


def from_dict(cls, values: dict):
    """Rebuild a config dataclass from JSON, ignoring unknown keys from newer writers."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in values.items() if key in known})
