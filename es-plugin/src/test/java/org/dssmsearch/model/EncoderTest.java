package org.dssmsearch.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.dssmsearch.Golden;
import org.junit.jupiter.api.Test;

/** The encoder (FORMAT.md 2.2) on a hand-sized model and against tests/golden/query_vectors.json. */
public class EncoderTest {
    static byte[] f32(float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) buffer.putFloat(v);
        return buffer.array();
    }

    /** buckets 3, layers [2, 2]: embedding [4, 2], bias_0 [2], kernel_1 [2, 2] identity, bias_1 [2] zero. */
    public static Map<String, Object> handConfig() {
        Map<String, Object> config = new HashMap<>();
        config.put("format", "dssm-search-model");
        config.put("format_version", 1);
        config.put("featuriser", Map.of("buckets", 3, "max_features", 512, "max_chars", 20000, "word_ngrams", 0));
        config.put("tower", Map.of("layers", List.of(2, 2), "activation", "tanh", "combiner", "sqrtn", "shared", true));
        config.put("towers", Map.of("query", "tower", "document", "tower"));
        config.put("weights", List.of(
            Map.of("name", "tower/embedding", "file", "weights/tower.embedding.f32", "shape", List.of(4, 2)),
            Map.of("name", "tower/bias_0", "file", "weights/tower.bias_0.f32", "shape", List.of(2)),
            Map.of("name", "tower/kernel_1", "file", "weights/tower.kernel_1.f32", "shape", List.of(2, 2)),
            Map.of("name", "tower/bias_1", "file", "weights/tower.bias_1.f32", "shape", List.of(2))));
        config.put("fingerprint", "0".repeat(64));
        return config;
    }

    public static Map<String, byte[]> handWeights() {
        return Map.of(
            "tower/embedding", f32(9, 9, 1, 0, 0, 1, 1, 1),
            "tower/bias_0", f32(0, 0),
            "tower/kernel_1", f32(1, 0, 0, 1),
            "tower/bias_1", f32(0, 0));
    }

    @Test
    void handWorkedVector() {
        DssmModel model = DssmModel.build(handConfig(), handWeights()::get);
        int[] ids = model.featuriser().ids("a");   // one trigram "#a#"
        assertEquals(1, ids.length);
        // e = row[id] / sqrt(1); h0 = tanh(e); h1 = tanh(h0 @ I); v = h1 / |h1|
        float[][] rows = { null, { 1, 0 }, { 0, 1 }, { 1, 1 } };
        double a = Math.tanh(Math.tanh(rows[ids[0]][0])), b = Math.tanh(Math.tanh(rows[ids[0]][1]));
        double norm = Math.hypot(a, b);
        assertArrayEquals(new float[] { (float) (a / norm), (float) (b / norm) }, model.queryVector("a"), 1e-6f);
        assertArrayEquals(new float[] { 0, 0 }, model.queryVector("?!"));   // no features -> zero vector
    }

    @Test
    void shapeAndSizeMismatchesAreRejected() {
        Map<String, byte[]> shortBias = new HashMap<>(handWeights());
        shortBias.put("tower/bias_0", f32(0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DssmModel.build(handConfig(), shortBias::get));
        assertTrue(e.getMessage().contains("tower/bias_0"), e.getMessage());
        Map<String, Object> wrongShape = handConfig();
        wrongShape.put("featuriser", Map.of("buckets", 5));
        e = assertThrows(IllegalArgumentException.class, () -> DssmModel.build(wrongShape, handWeights()::get));
        assertTrue(e.getMessage().contains("tower/embedding"), e.getMessage());
        Map<String, byte[]> missing = new HashMap<>(handWeights());
        missing.remove("tower/kernel_1");
        assertThrows(IllegalArgumentException.class, () -> DssmModel.build(handConfig(), missing::get));
    }

    @Test
    @SuppressWarnings("unchecked")
    void queryVectorsEqualTheGoldenFile() throws Exception {
        Map<String, Object> golden = (Map<String, Object>) Golden.readJson(Golden.require("query_vectors.json"));
        Path modelDir = Golden.dir().resolve((String) golden.getOrDefault("model", "tiny_model"));
        DssmModel model = ModelDirectory.load(modelDir);
        List<Object> cases = (List<Object>) golden.get("cases");
        double worst = 0;
        int compared = 0;
        for (Object raw : cases) {
            Map<String, Object> c = (Map<String, Object>) raw;
            String text = (String) c.get("text");
            // each case: {"text", "query": [...], "document": [...]} (or {"text", "side", "vector"})
            for (String side : List.of("query", "document", "vector")) {
                if (!c.containsKey(side)) continue;
                boolean document = side.equals("document") || "document".equals(c.get("side"));
                float[] actual = document ? model.documentVector(text) : model.queryVector(text);
                List<Number> expected = (List<Number>) c.get(side);
                assertEquals(expected.size(), actual.length, "dims for " + text);
                for (int i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(expected.get(i).doubleValue() - actual[i]));
                compared++;
            }
        }
        assertTrue(compared >= cases.size(), "no vectors compared");
        if (golden.containsKey("fingerprint")) assertEquals(golden.get("fingerprint"), model.fingerprint());
        assertTrue(worst <= 1e-5, "max abs difference " + worst + " > 1e-5 over " + cases.size() + " cases");
    }
}
