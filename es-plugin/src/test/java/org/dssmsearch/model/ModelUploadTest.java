package org.dssmsearch.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Base64;
import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** Model uploads: validation naming the bad field, the chunked storage round trip, and registry names. */
class ModelUploadTest {
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
