package org.dssmsearch.model;

/**
 * One DSSM tower (docs/FORMAT.md section 2.2): an embedding bag over feature ids, then dense tanh layers,
 * then L2 normalisation.
 * <pre>
 * e   = (sum_i embedding[x_i]) / sqrt(n)      combiner "sqrtn"
 * h_0 = tanh(e + bias_0)                     [layers[0]]
 * h_k = tanh(h_{k-1} @ kernel_k + bias_k)    k = 1 .. len(layers)-1
 * v   = h_last / ||h_last||                  [layers[-1]]; n = 0 or ||h_last|| = 0 gives the zero vector
 * </pre>
 * Weights are row-major float32 as exported; the sums run in double.
 */
public final class Mlp {
    private final float[] embedding;   // [rows, layers[0]]
    private final float[][] kernels;   // kernels[k]: [layers[k-1], layers[k]], kernels[0] unused
    private final float[][] biases;    // biases[k]: [layers[k]]
    private final int[] layers;
    private final int rows;
    private final String combiner;
    private final String activation;

    Mlp(int[] layers, float[] embedding, float[][] kernels, float[][] biases, String combiner, String activation) {
        this.layers = layers.clone();
        this.embedding = embedding;
        this.kernels = kernels;
        this.biases = biases;
        this.rows = embedding.length / layers[0];
        this.combiner = combiner;
        this.activation = activation;
    }

    public int dims() {
        return layers[layers.length - 1];
    }

    /** The unit vector of a feature id sequence, [dims]; ids out of range are an error. */
    public float[] encode(int[] ids) {
        float[] out = new float[dims()];
        if (ids.length == 0) return out;
        double[] hidden = bag(ids);
        for (int j = 0; j < hidden.length; j++) hidden[j] = activate(hidden[j] + biases[0][j]);
        for (int k = 1; k < layers.length; k++) hidden = dense(hidden, kernels[k], biases[k], layers[k]);
        double norm = 0;
        for (double h : hidden) norm += h * h;
        norm = Math.sqrt(norm);
        if (norm == 0) return out;
        for (int j = 0; j < out.length; j++) out[j] = (float) (hidden[j] / norm);
        return out;
    }

    private double[] bag(int[] ids) {
        int width = layers[0];
        double[] sum = new double[width];
        for (int id : ids) {
            if (id <= 0 || id >= rows) throw new IllegalArgumentException("feature id " + id + " outside [1, " + (rows - 1) + "]");
            int offset = id * width;
            for (int j = 0; j < width; j++) sum[j] += embedding[offset + j];
        }
        double scale = switch (combiner) {
            case "sqrtn" -> 1.0 / Math.sqrt(ids.length);
            case "mean" -> 1.0 / ids.length;
            default -> 1.0; // "sum"
        };
        for (int j = 0; j < width; j++) sum[j] *= scale;
        return sum;
    }

    private double[] dense(double[] input, float[] kernel, float[] bias, int width) {
        double[] out = new double[width];
        for (int i = 0; i < input.length; i++) {
            double x = input[i];
            if (x == 0) continue;
            int row = i * width;
            for (int j = 0; j < width; j++) out[j] += x * kernel[row + j];
        }
        for (int j = 0; j < width; j++) out[j] = activate(out[j] + bias[j]);
        return out;
    }

    private double activate(double x) {
        return switch (activation) {
            case "tanh" -> Math.tanh(x);
            case "relu" -> Math.max(0, x);
            default -> x; // "linear"
        };
    }
}
