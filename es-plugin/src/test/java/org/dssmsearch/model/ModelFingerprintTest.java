package org.dssmsearch.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.dssmsearch.Golden;
import org.elasticsearch.common.xcontent.XContentHelper;
import org.elasticsearch.xcontent.json.JsonXContent;
import org.junit.jupiter.api.Test;

/**
 * The registry computes fingerprints itself (docs/FORMAT.md 2.3, issue 17 finding 7): the canonical JSON
 * equals Python's byte for byte, an upload whose bytes do not give its fingerprint is refused naming both,
 * and stored chunks or configs changed after the upload are refused when decoded.
 * The expected values were computed with Python (dssm/export.py {@code fingerprint}; the snippets are in
 * the comments), so these tests check Java against Python, not against itself.
 */
class ModelFingerprintTest {
    /**
     * EncoderTest.handConfig() + handWeights(): {@code hashlib.sha256(json.dumps(config, sort_keys=True,
     * separators=(",", ":")).encode())} updated with each tensor as {@code np.asarray(w, "<f4").tobytes()}.
     */
    static final String HAND_FINGERPRINT = "66b9f293db3ac633a9dd5f9adcfa487eebf1886221f46a141d0306a5a986d76f";
    /** tests/golden/tiny_model with every weight file zeroed, through dssm.export.fingerprint. */
    static final String TINY_ZEROED_FINGERPRINT = "6257ca5c06312227beb5c62eed286798ffc8138988ce7542fe05a3e4a4ece3d2";

    private static Map<String, Object> parse(String json) throws IOException {
        return XContentHelper.convertToMap(JsonXContent.jsonXContent, new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), true);
    }

    @Test
    void canonicalJsonIsPythons() throws IOException {
        // Python: v = {...}; json.dumps(v) is the input, json.dumps(core, sort_keys=True, separators=(",", ":")) the expected
        Map<String, Object> config = parse("""
            {"b": [1, 2.5, 1e-05, 0.0001, 1e+16, 1234567890123456.0, -0.0, 0.1, 1e+22, 5e-324, true, false, null],
             "a": "\\u00e9\\"\\\\\\n\\t\\u0001\\u007f~ \\u2028\\ud83d\\ude00", "z": {"y": 1, "x": []},
             "\\uffff": 1, "\\ud83d\\ude00": 2, "training": {"lr": 0.1}, "fingerprint": "x"}""");
        String python = """
            {"a":"\\u00e9\\"\\\\\\n\\t\\u0001\\u007f~ \\u2028\\ud83d\\ude00","b":[1,2.5,1e-05,0.0001,1e+16,1234567890123456.0,\
            -0.0,0.1,1e+22,5e-324,true,false,null],"z":{"x":[],"y":1},"\\uffff":1,"\\ud83d\\ude00":2}""";
        assertEquals(python, ModelFingerprint.canonicalConfig(config));
    }

    @Test
    void pythonFloatRepr() {
        // repr(x) in Python for each x
        assertEquals("2.0", ModelFingerprint.pythonFloat(2.0));
        assertEquals("0.30000000000000004", ModelFingerprint.pythonFloat(0.1 + 0.2));
        assertEquals("1e-05", ModelFingerprint.pythonFloat(1e-5));
        assertEquals("1.5e+300", ModelFingerprint.pythonFloat(1.5e300));
        assertEquals("123456789.0", ModelFingerprint.pythonFloat(123456789.0));
        assertEquals("-0.001", ModelFingerprint.pythonFloat(-0.001));
    }

    @Test
    void goldenModelGivesThePythonFingerprint() throws IOException {
        Map<String, Object> config = ModelDirectory.readJson(Golden.require("tiny_model").resolve("config.json"));
        assertEquals(config.get("fingerprint"), fingerprintOf(config, weightsOf(Golden.dir().resolve("tiny_model"), config)));
    }

    @Test
    void uploadWithOtherWeightsThanItsFingerprintIsRefusedNamingBoth() throws IOException {
        Path dir = Golden.require("tiny_model");
        Map<String, Object> config = ModelDirectory.readJson(dir.resolve("config.json"));
        Map<String, byte[]> weights = weightsOf(dir, config);
        assertEquals(config.get("fingerprint"), ModelStore.parseUpload("tiny", body(config, weights)).model().fingerprint());

        Map<String, byte[]> zeros = new HashMap<>();
        weights.forEach((name, bytes) -> zeros.put(name, new byte[bytes.length]));
        String reason = assertThrows(IllegalArgumentException.class, () -> ModelStore.parseUpload("tiny", body(config, zeros))).getMessage();
        assertTrue(reason.contains((String) config.get("fingerprint")) && reason.contains(TINY_ZEROED_FINGERPRINT), reason);

        Map<String, Object> otherConfig = new LinkedHashMap<>(config);                       // same weights, other featuriser
        Map<String, Object> featuriser = new LinkedHashMap<>(Json.objectValue(config, "featuriser"));
        featuriser.put("max_features", 64);
        otherConfig.put("featuriser", featuriser);
        reason = assertThrows(IllegalArgumentException.class, () -> ModelStore.parseUpload("tiny", body(otherConfig, weights))).getMessage();
        assertTrue(reason.startsWith("config.fingerprint [" + config.get("fingerprint") + "]"), reason);

        Map<String, Object> withTraining = new LinkedHashMap<>(config);                      // "training" is not fingerprinted
        withTraining.put("training", Map.of("epochs", 3, "lr", 0.05));
        assertEquals(config.get("fingerprint"), ModelStore.parseUpload("tiny", body(withTraining, weights)).model().fingerprint());
    }

    @Test
    void changedStoredChunksOrConfigAreRefusedOnLoad() {
        Map<String, Object> config = EncoderTest.handConfig();
        config.put("fingerprint", HAND_FINGERPRINT);
        Map<String, byte[]> weights = EncoderTest.handWeights();
        ModelStore.Upload upload = ModelStore.parseUpload("hand", body(config, weights));
        assertArrayEquals(upload.model().queryVector("a"), ModelStore.decode(upload.meta(), upload.chunks()).queryVector("a"));

        List<byte[]> flipped = new ArrayList<>();
        for (byte[] chunk : upload.chunks()) flipped.add(chunk.clone());
        flipped.get(0)[5] ^= 0x01;                                                           // one bit of one float
        String reason = assertThrows(IllegalStateException.class, () -> ModelStore.decode(upload.meta(), flipped)).getMessage();
        assertTrue(reason.contains("stored model [hand] fails its fingerprint check") && reason.contains(HAND_FINGERPRINT), reason);

        List<byte[]> zeroed = new ArrayList<>();
        for (byte[] chunk : upload.chunks()) zeroed.add(new byte[chunk.length]);
        assertThrows(IllegalStateException.class, () -> ModelStore.decode(upload.meta(), zeroed));

        Map<String, Object> meta = new LinkedHashMap<>(upload.meta());                       // stored config edited
        Map<String, Object> storedConfig = new HashMap<>(config);
        storedConfig.put("featuriser", Map.of("buckets", 3, "max_features", 7, "max_chars", 20000, "word_ngrams", 0));
        meta.put("config", storedConfig);
        assertThrows(IllegalStateException.class, () -> ModelStore.decode(meta, upload.chunks()));

        List<byte[]> longer = new ArrayList<>(upload.chunks());                             // bytes beyond the manifest
        longer.add(new byte[4]);
        assertThrows(IllegalStateException.class, () -> ModelStore.decode(upload.meta(), longer));
    }

    private static Map<String, Object> body(Map<String, Object> config, Map<String, byte[]> weights) {
        Map<String, Object> encoded = new HashMap<>();
        weights.forEach((name, bytes) -> encoded.put(name, Base64.getEncoder().encodeToString(bytes)));
        return Map.of("config", config, "weights", encoded);
    }

    private static Map<String, byte[]> weightsOf(Path dir, Map<String, Object> config) throws IOException {
        Map<String, byte[]> weights = new LinkedHashMap<>();
        for (DssmModel.WeightSpec spec : DssmModel.validateConfig(config)) weights.put(spec.name(), Files.readAllBytes(dir.resolve(spec.file())));
        return weights;
    }

    private static String fingerprintOf(Map<String, Object> config, Map<String, byte[]> weights) {
        ModelFingerprint.Digest digest = ModelFingerprint.of(config);
        for (DssmModel.WeightSpec spec : DssmModel.validateConfig(config)) digest.update(weights.get(spec.name()));
        return digest.hex();
    }
}
