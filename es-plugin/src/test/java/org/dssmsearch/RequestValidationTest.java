package org.dssmsearch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.elasticsearch.xcontent.XContentParserConfiguration;
import org.junit.jupiter.api.Test;

/** Search bodies and model uploads: defaults, the 400s naming their field, and the chunked storage round trip. */
class RequestValidationTest {
    private static SearchParams parse(Map<String, Object> body) {
        return SearchParams.parse(body, XContentParserConfiguration.EMPTY);
    }

    private static String reasonOf(Map<String, Object> body) {
        return assertThrows(IllegalArgumentException.class, () -> parse(body)).getMessage();
    }

    @Test
    void defaultsMirrorThePythonSide() {
        SearchParams params = parse(Map.of("query", "debian"));
        assertEquals(10, params.size());
        assertEquals(0, params.from());
        assertEquals("linear", params.fusion());
        assertEquals(0.5, params.alpha());
        assertEquals("zscore", params.norm());
        assertEquals(60, params.rankConstant());
        assertEquals(10, params.rankWindowSize());                 // from + size
        assertEquals(100, params.numCandidates());                 // min(10000, max(100, 10 * k))
        assertEquals(null, params.fields());                      // chosen from the mapping: body, else title + text
        assertEquals(null, params.vectorField());                 // chosen from the mapping: passages.vector, else vector
        assertEquals(500, parse(Map.of("query", "x", "size", 50)).numCandidates());
    }

    @Test
    void everyBadFieldIsNamed() {
        assertTrue(reasonOf(Map.of("size", 1)).startsWith("[query]"));
        assertTrue(reasonOf(Map.of("query", "x", "size", 10001)).startsWith("[size]"));
        assertTrue(reasonOf(Map.of("query", "x", "size", -1)).startsWith("[size]"));
        assertTrue(reasonOf(Map.of("query", "x", "size", 1.5)).startsWith("[size]"));
        assertTrue(reasonOf(Map.of("query", "x", "fusion", "borda")).startsWith("[fusion]"));
        assertTrue(reasonOf(Map.of("query", "x", "filter", "term")).startsWith("[filter]"));
        assertTrue(reasonOf(Map.of("query", "x", "filter", List.of())).startsWith("[filter]"));
        assertTrue(reasonOf(Map.of("query", "x", "alpha", -0.1)).startsWith("[alpha]"));
        assertTrue(reasonOf(Map.of("query", "x", "num_candidates", 5)).startsWith("[num_candidates]"));
        assertTrue(reasonOf(Map.of("query", "x", "explain", "yes")).startsWith("[explain]"));
        assertTrue(reasonOf(Map.of("query", "x", "colour", "red")).startsWith("[colour]"));
    }

    @Test
    void uploadsAreValidatedAndRoundTripThroughChunks() {
        Map<String, Object> weights = new HashMap<>();
        EncoderTest.handWeights().forEach((name, bytes) -> weights.put(name, Base64.getEncoder().encodeToString(bytes)));
        Map<String, Object> config = EncoderTest.handConfig();
        config.put("fingerprint", ModelFingerprintTest.HAND_FINGERPRINT);   // the registry checks it
        ModelStore.Upload upload = ModelStore.parseUpload("hand", Map.of("config", config, "weights", weights));
        assertEquals(1, upload.chunks().size());
        assertEquals(2, upload.meta().get("dims"));
        DssmModel decoded = ModelStore.decode(upload.meta(), upload.chunks());
        assertArrayEquals(upload.model().queryVector("a b"), decoded.queryVector("a b"));

        Map<String, Object> badBase64 = new HashMap<>(weights);
        badBase64.put("tower/bias_0", "%%%");
        String reason = assertThrows(IllegalArgumentException.class,
            () -> ModelStore.parseUpload("hand", Map.of("config", config, "weights", badBase64))).getMessage();
        assertTrue(reason.startsWith("[weights.tower/bias_0]"), reason);
        assertThrows(IllegalArgumentException.class, () -> ModelStore.parseUpload("hand", Map.of("weights", weights)));
    }

    @Test
    void modelNamesCannotBePaths() {
        assertEquals("demo-1.v2", ModelRegistry.validName("demo-1.v2"));
        for (String bad : new String[] { "../x", "A", "", "x/y", "_x" }) {
            assertThrows(IllegalArgumentException.class, () -> ModelRegistry.validName(bad), bad);
        }
    }
}
