"""The DSSM tower in Keras 3 (backend-agnostic `keras.ops`): trigram ids -> unit vector.

Embedding-bag over trigram ids (sum / sqrt(n)), tanh dense layers (Huang et al. 2013: 300-300-128),
L2 normalisation. The maths is docs/FORMAT.md section 2.2; `dssm.export.Encoder` is its numpy twin.
"""
from __future__ import annotations

import numpy as np

from dssm.backend import load_keras
from dssm.config import FeaturiserConfig, TowerConfig

keras = load_keras()
ops = keras.ops


@keras.saving.register_keras_serializable(package="dssm")
class Tower(keras.layers.Layer):
    """ids int32 [batch, length] (0 = padding) -> vectors float32 [batch, layers[-1]].

    Texts with no ids map to the zero vector. `call(ids, return_hidden=True)` also returns the
    hidden layer outputs, for the layer-wise triplet regulariser.
    """

    def __init__(self, buckets: int, layers: tuple[int, ...] | list[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.buckets = int(buckets)
        self.sizes = tuple(int(size) for size in layers)

    @classmethod
    def from_configs(cls, featuriser: FeaturiserConfig, tower: TowerConfig, name: str = "tower") -> "Tower":
        return cls(featuriser.buckets, tower.layers, name=name)

    def build(self, input_shape=None) -> None:
        sizes = self.sizes
        self.embedding = self.add_weight(name="embedding", shape=(self.buckets + 1, sizes[0]),
                                         initializer=keras.initializers.RandomUniform(-0.05, 0.05))
        self.biases = [self.add_weight(name="bias_0", shape=(sizes[0],), initializer="zeros")]
        self.kernels = []
        for k in range(1, len(sizes)):
            self.kernels.append(self.add_weight(name=f"kernel_{k}", shape=(sizes[k - 1], sizes[k]),
                                                initializer="glorot_uniform"))
            self.biases.append(self.add_weight(name=f"bias_{k}", shape=(sizes[k],), initializer="zeros"))

    def call(self, ids, return_hidden: bool = False):
        count = ops.sum(ops.cast(ops.greater(ids, 0), self.compute_dtype), axis=1, keepdims=True)  # [batch, 1]
        hidden = [ops.tanh(self.embedding_bag(ids) + self.biases[0])]
        for kernel, bias in zip(self.kernels, self.biases[1:]):
            hidden.append(ops.tanh(ops.matmul(hidden[-1], kernel) + bias))
        has_features = ops.cast(ops.greater(count, 0), self.compute_dtype)
        vectors = l2_normalise(hidden[-1]) * has_features
        return (vectors, hidden) if return_hidden else vectors

    def embedding_bag(self, ids):
        """sum of embedding rows of the non-padding ids / sqrt(their number): [batch, length] -> [batch, d0].

        On TensorFlow one fused kernel that never materialises the [batch, length, d0] gathered rows,
        with a gradient over the touched rows only: the multi-threaded C++ kernels of dssm/native when
        they are built (CPU), else tf.sparse.segment_sqrt_n with a hand-written gradient
        (_tf_embedding_bag). Elsewhere keras.ops.
        """
        if keras.backend.backend() == "tensorflow":
            return _tf_embedding_bag(self.embedding.value, ids)
        present = ops.cast(ops.greater(ids, 0), self.compute_dtype)              # [batch, length]
        weights = present / ops.sqrt(ops.maximum(ops.sum(present, axis=1, keepdims=True), 1.0))
        return ops.einsum("bl,bld->bd", weights, ops.take(self.embedding, ids, axis=0))

    def named_weights(self, prefix: str) -> dict:
        """Export names (FORMAT.md 2.1) -> numpy arrays."""
        out = {f"{prefix}/embedding": ops.convert_to_numpy(self.embedding)}
        for k, bias in enumerate(self.biases):
            out[f"{prefix}/bias_{k}"] = ops.convert_to_numpy(bias)
        for k, kernel in enumerate(self.kernels, start=1):
            out[f"{prefix}/kernel_{k}"] = ops.convert_to_numpy(kernel)
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "buckets": self.buckets, "layers": list(self.sizes)}


def l2_normalise(x, epsilon: float = 1e-12):
    """x / ||x||_2 along the last axis; zero rows stay zero. [batch, dim] -> [batch, dim]."""
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), epsilon * epsilon))
    return x / norm


def make_towers(featuriser: FeaturiserConfig, tower: TowerConfig) -> tuple[Tower, Tower]:
    """(query tower, document tower): the SAME object twice when weights are shared."""
    if tower.shared:
        shared = Tower.from_configs(featuriser, tower, name="tower")
        return shared, shared
    return (Tower.from_configs(featuriser, tower, name="query_tower"),
            Tower.from_configs(featuriser, tower, name="document_tower"))


def _tf_embedding_bag(table, ids):
    """TensorFlow embedding-bag, sum / sqrt(n): ids [batch, length] -> [batch, d0], with a fast gradient.

    Forward: the fused tf.sparse.segment_sqrt_n. TensorFlow's own gradient of it (one single-threaded
    row-by-row scatter into a dense table-sized tensor) took about 80% of a CPU training step. Here the
    gradient is the same fused kernel run on the transposed bag matrix: the occurrences are grouped by
    trigram id (a radix sort, in numpy on CPU), then each touched row sums the scaled upstream
    gradients of the bags it occurs in. The result is IndexedSlices over the touched rows only.
    """
    import tensorflow as tf

    native = _native_ops()
    if native is not None:
        return _native_embedding_bag(native, table, ids)
    where = tf.where(ids > 0)
    flat = tf.gather_nd(ids, where)
    bags = tf.cast(where[:, 0], tf.int32)
    size = tf.shape(ids)[0]

    @tf.custom_gradient
    def bag(table):
        def grad(upstream):
            counts = tf.math.bincount(bags, minlength=size, maxlength=size, dtype=upstream.dtype)
            scaled = upstream * tf.math.rsqrt(tf.maximum(counts, 1.0))[:, None]
            order = _grouping_order(flat)
            grouped = tf.gather(flat, order)
            rows, position = tf.unique(grouped)
            values = tf.sparse.segment_sum(scaled, tf.gather(bags, order), position)
            return tf.IndexedSlices(values, rows, tf.shape(table))
        return tf.sparse.segment_sqrt_n(table, flat, bags, num_segments=size), grad

    return bag(table)


def _native_ops():
    """The fused CPU kernels (dssm.native) when built and no GPU is visible, else None."""
    import tensorflow as tf

    from dssm import native

    return None if tf.config.list_logical_devices("GPU") else native.ops()


def _native_embedding_bag(native, table, ids):
    """The same bag and gradient as _tf_embedding_bag, each one multi-threaded C++ kernel (dssm/native).

    Forward 3-4x faster than tf.sparse.segment_sqrt_n on 2 cores; the gradient is IndexedSlices over the
    touched rows in ascending order, summed without a sort or a unique in TensorFlow."""
    import tensorflow as tf

    ids = tf.cast(ids, tf.int32)

    @tf.custom_gradient
    def bag(table):
        def grad(upstream):
            rows, values = native.dssm_embedding_bag_grad(upstream, ids, tf.shape(table)[0])
            return tf.IndexedSlices(values, rows, tf.shape(table))
        return native.dssm_embedding_bag(table, ids), grad

    return bag(table)


def _grouping_order(flat):
    """A permutation of int32 ids [n] that sorts them (equal ids keep their order).

    On CPU numpy's radix sort for 16-bit keys (ids below 65,536: the default vocabulary) is about
    4x faster than tf.sort; on an accelerator the sort stays on the device.
    """
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return tf.argsort(flat, stable=True)

    def order(ids):
        keys = ids.astype(np.uint16) if ids.size and ids.max() < 65536 else ids
        return np.argsort(keys, kind="stable").astype(np.int32)

    result = tf.numpy_function(order, [flat], tf.int32, stateful=False)
    result.set_shape(flat.shape)
    return result
