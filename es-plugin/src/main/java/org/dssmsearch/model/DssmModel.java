package org.dssmsearch.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * An exported DSSM model (docs/FORMAT.md section 2): the featuriser plus the query and document towers,
 * rebuilt from config.json and the weight tensors. {@code queryVector("good")} -> unit vector [dims].
 */
public final class DssmModel {
    public static final String FORMAT = "dssm-search-model";
    public static final int FORMAT_VERSION = 1;
    private static final Pattern FINGERPRINT = Pattern.compile("[0-9a-f]{64}");
    private static final Set<String> ACTIVATIONS = Set.of("tanh", "relu", "linear");
    private static final Set<String> COMBINERS = Set.of("sqrtn", "mean", "sum");

    /** One entry of the weight manifest, in manifest order. */
    public record WeightSpec(String name, String file, int[] shape) {
        long floats() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    private final Featuriser featuriser;
    private final Mlp queryTower;
    private final Mlp documentTower;
    private final String fingerprint;
    private final Map<String, Object> config;

    private DssmModel(Featuriser featuriser, Mlp queryTower, Mlp documentTower, String fingerprint, Map<String, Object> config) {
        this.featuriser = featuriser;
        this.queryTower = queryTower;
        this.documentTower = documentTower;
        this.fingerprint = fingerprint;
        this.config = config;
    }

    public String fingerprint() {
        return fingerprint;
    }

    public int dims() {
        return queryTower.dims();
    }

    public Featuriser featuriser() {
        return featuriser;
    }

    public Map<String, Object> config() {
        return config;
    }

    public float[] queryVector(String text) {
        return queryTower.encode(featuriser.ids(text));
    }

    public float[] documentVector(String text) {
        return documentTower.encode(featuriser.ids(text));
    }

    /**
     * Builds and validates a model. {@code weightBytes} maps a manifest weight name to its raw little-endian
     * float32 bytes (null when absent). Every mismatch is an IllegalArgumentException naming the weight.
     */
    public static DssmModel build(Map<String, Object> config, Function<String, byte[]> weightBytes) {
        List<WeightSpec> manifest = validateConfig(config);
        Map<String, float[]> tensors = new HashMap<>();
        for (WeightSpec spec : manifest) {
            byte[] bytes = weightBytes.apply(spec.name());
            if (bytes == null) throw new IllegalArgumentException("weights: missing tensor [" + spec.name() + "]");
            if (bytes.length != spec.floats() * 4) {
                throw new IllegalArgumentException("weights: tensor [" + spec.name() + "] has " + bytes.length
                    + " bytes, shape " + java.util.Arrays.toString(spec.shape()) + " needs " + spec.floats() * 4);
            }
            float[] values = new float[(int) spec.floats()];
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
            tensors.put(spec.name(), values);
        }
        Map<String, Object> tower = Json.objectValue(config, "tower");
        int[] layers = Json.intArray(tower.get("layers"), "config.tower.layers");
        String combiner = Json.stringValue(tower, "combiner", "sqrtn");
        String activation = Json.stringValue(tower, "activation", "tanh");
        Map<String, Object> towers = Json.objectValue(config, "towers");
        Mlp query = tower(tensors, (String) towers.get("query"), layers, combiner, activation);
        String documentPrefix = (String) towers.get("document");
        Mlp document = documentPrefix.equals(towers.get("query")) ? query : tower(tensors, documentPrefix, layers, combiner, activation);
        Featuriser featuriser = new Featuriser(Featuriser.Config.fromMap(Json.objectValue(config, "featuriser")));
        return new DssmModel(featuriser, query, document, (String) config.get("fingerprint"), config);
    }

    private static Mlp tower(Map<String, float[]> tensors, String prefix, int[] layers, String combiner, String activation) {
        float[][] kernels = new float[layers.length][];
        float[][] biases = new float[layers.length][];
        for (int k = 0; k < layers.length; k++) {
            biases[k] = tensors.get(prefix + "/bias_" + k);
            if (k > 0) kernels[k] = tensors.get(prefix + "/kernel_" + k);
        }
        return new Mlp(layers, tensors.get(prefix + "/embedding"), kernels, biases, combiner, activation);
    }

    /** Checks config.json against FORMAT.md 2.1 and returns the weight manifest. */
    public static List<WeightSpec> validateConfig(Map<String, Object> config) {
        String format = Json.stringValue(config, "format", FORMAT);
        if (!FORMAT.equals(format)) throw new IllegalArgumentException("config.format must be [" + FORMAT + "], got [" + format + "]");
        int version = Json.intValue(config, "format_version", FORMAT_VERSION);
        if (version != FORMAT_VERSION) {
            throw new IllegalArgumentException("config.format_version " + version + " is not supported (this plugin reads " + FORMAT_VERSION + ")");
        }
        String fingerprint = Json.stringValue(config, "fingerprint", null);
        if (fingerprint == null || !FINGERPRINT.matcher(fingerprint).matches()) {
            throw new IllegalArgumentException("config.fingerprint must be 64 lowercase hex characters, got [" + fingerprint + "]");
        }
        Map<String, Object> featuriserMap = Json.objectValue(config, "featuriser");
        if (featuriserMap == null) throw new IllegalArgumentException("config.featuriser is missing");
        Featuriser.Config featuriser = Featuriser.Config.fromMap(featuriserMap);
        Map<String, Object> tower = Json.objectValue(config, "tower");
        if (tower == null) throw new IllegalArgumentException("config.tower is missing");
        int[] layers = Json.intArray(tower.get("layers"), "config.tower.layers");
        if (layers.length == 0) throw new IllegalArgumentException("config.tower.layers must not be empty");
        for (int width : layers) if (width < 1) throw new IllegalArgumentException("config.tower.layers must be positive");
        String activation = Json.stringValue(tower, "activation", "tanh");
        if (!ACTIVATIONS.contains(activation)) throw new IllegalArgumentException("config.tower.activation [" + activation + "] unknown; choose from " + ACTIVATIONS);
        String combiner = Json.stringValue(tower, "combiner", "sqrtn");
        if (!COMBINERS.contains(combiner)) throw new IllegalArgumentException("config.tower.combiner [" + combiner + "] unknown; choose from " + COMBINERS);
        Map<String, Object> towers = Json.objectValue(config, "towers");
        if (towers == null) throw new IllegalArgumentException("config.towers is missing");
        Map<String, WeightSpec> manifest = manifest(config);
        Map<String, int[]> expected = new LinkedHashMap<>();
        for (String side : List.of("query", "document")) {
            String prefix = Json.stringValue(towers, side, null);
            if (prefix == null) throw new IllegalArgumentException("config.towers." + side + " is missing");
            expected.put(prefix + "/embedding", new int[] { featuriser.buckets() + 1, layers[0] });
            expected.put(prefix + "/bias_0", new int[] { layers[0] });
            for (int k = 1; k < layers.length; k++) {
                expected.put(prefix + "/kernel_" + k, new int[] { layers[k - 1], layers[k] });
                expected.put(prefix + "/bias_" + k, new int[] { layers[k] });
            }
        }
        for (Map.Entry<String, int[]> want : expected.entrySet()) {
            WeightSpec spec = manifest.get(want.getKey());
            if (spec == null) throw new IllegalArgumentException("config.weights has no tensor [" + want.getKey() + "]");
            if (!java.util.Arrays.equals(spec.shape(), want.getValue())) {
                throw new IllegalArgumentException("config.weights: tensor [" + want.getKey() + "] has shape "
                    + java.util.Arrays.toString(spec.shape()) + ", the config needs " + java.util.Arrays.toString(want.getValue()));
            }
        }
        return List.copyOf(manifest.values());
    }

    private static Map<String, WeightSpec> manifest(Map<String, Object> config) {
        List<?> entries = Json.listValue(config, "weights");
        if (entries == null) throw new IllegalArgumentException("config.weights (the manifest) is missing");
        Map<String, WeightSpec> manifest = new LinkedHashMap<>();
        for (Object entry : entries) {
            if (!(entry instanceof Map<?, ?> raw)) throw new IllegalArgumentException("config.weights entries must be objects");
            @SuppressWarnings("unchecked") Map<String, Object> map = (Map<String, Object>) raw;
            String name = Json.stringValue(map, "name", null);
            if (name == null) throw new IllegalArgumentException("config.weights entry without [name]");
            int[] shape = Json.intArray(map.get("shape"), "config.weights[" + name + "].shape");
            WeightSpec spec = new WeightSpec(name, Json.stringValue(map, "file", null), shape);
            for (int d : shape) if (d < 0) throw new IllegalArgumentException("config.weights[" + name + "].shape must be non-negative");
            if (spec.floats() > Integer.MAX_VALUE / 4) throw new IllegalArgumentException("config.weights[" + name + "] is too large");
            if (manifest.put(name, spec) != null) throw new IllegalArgumentException("config.weights names [" + name + "] twice");
        }
        return manifest;
    }
}
