"""Adam that updates only the embedding rows a batch touches ("lazy" Adam, as TF Addons' LazyAdam).

The trigram table's gradient is IndexedSlices over the rows a batch touches (dssm.tower). Plain Adam
densifies it and updates all 32,769 x 300 values every step: at batch 512 that update alone took
about a third of a CPU training step. Here those rows' moments and values are updated and the other
rows keep theirs (their moments are not decayed). On CPU with the fused kernels built (dssm/native)
the update is one C++ pass over each touched row, in place. Dense gradients (the other layers, and every
gradient on backends without IndexedSlices) take the ordinary Adam step.
"""
from __future__ import annotations

from dssm.backend import load_keras

keras = load_keras()
ops = keras.ops


def make_optimizer(config) -> keras.optimizers.Optimizer:
    """The optimiser a TrainConfig names (config.optimizer: adam | lazy-adam)."""
    if config.optimizer == "lazy-adam":
        return LazyAdam(config.learning_rate, table_lr_scale=config.table_lr_scale)
    return keras.optimizers.Adam(config.learning_rate)


@keras.saving.register_keras_serializable(package="dssm")
class LazyAdam(keras.optimizers.Adam):
    """table_lr_scale: the trigram table's step is this many times the dense layers' (the sparse rows
    see few updates each; static-embedding models train their tables with far larger rates)."""

    def __init__(self, learning_rate=0.001, table_lr_scale: float = 1.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.table_lr_scale = float(table_lr_scale)

    def get_config(self):
        return {**super().get_config(), "table_lr_scale": self.table_lr_scale}

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        alpha = (ops.cast(learning_rate * self.table_lr_scale, dtype) * ops.sqrt(1 - beta_2 ** step)
                 / (1 - beta_1 ** step))
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        native = _native_ops(variable)
        if native is not None:            # the same update in one pass over each row, in place
            native.dssm_sparse_adam(variable.handle, m.handle, v.handle, tf.cast(gradient.indices, tf.int32),
                                    tf.cast(gradient.values, dtype), alpha, beta_1, beta_2, ops.cast(self.epsilon, dtype))
            return
        rows, values = _unique_rows(gradient)
        values = tf.cast(values, dtype)
        m_rows = beta_1 * tf.gather(_tensor(m), rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(_tensor(v), rows) + (1 - beta_2) * values * values
        shape = tf.shape(_tensor(variable), out_type=rows.dtype)
        self.assign(m, tf.IndexedSlices(m_rows, rows, shape))
        self.assign(v, tf.IndexedSlices(v_rows, rows, shape))
        self.assign_sub(variable, tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows, shape))


def _unique_rows(gradient):
    """(rows, values) with each row once: replicas' slices are concatenated, so rows may repeat."""
    import tensorflow as tf

    rows, position = tf.unique(gradient.indices)
    return rows, tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])


def _native_ops(variable):
    """The fused kernels (dssm.native) for a float32 variable on the CPU, else None."""
    from dssm.tower import _native_ops as native_ops

    return native_ops() if variable.dtype == "float32" else None


def _tensor(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable
