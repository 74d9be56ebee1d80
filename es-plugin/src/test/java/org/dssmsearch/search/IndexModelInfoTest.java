package org.dssmsearch.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.dssmsearch.model.DssmModel;
import org.dssmsearch.model.EncoderTest;
import org.elasticsearch.common.xcontent.XContentHelper;
import org.elasticsearch.xcontent.json.JsonXContent;
import org.junit.jupiter.api.Test;

/** What the plugin reads from an index mapping: fingerprint, dims, default BM25 fields, and the refusals. */
class IndexModelInfoTest {
    private static final String FINGERPRINT = "a".repeat(64);

    private static IndexModelInfo read(String name, String mapping, String vectorField) {
        Map<String, Object> parsed = XContentHelper.convertToMap(JsonXContent.jsonXContent, mapping, true);
        return IndexModelInfo.fromMappings(new String[] { name }, List.of(parsed), vectorField);
    }

    private static final String PYTHON_INDEX = """
        {"_meta": {"model_fingerprint": "%s", "dims": 2},
         "properties": {"title": {"type": "text", "copy_to": "body"}, "text": {"type": "text", "copy_to": "body"},
                        "body": {"type": "text"}, "vector": {"type": "dense_vector", "dims": 2, "similarity": "cosine"}}}
        """.formatted(FINGERPRINT);

    @Test
    void readsThePythonIndexersMapping() {
        IndexModelInfo info = read("docs", PYTHON_INDEX, null);
        assertEquals(FINGERPRINT, info.fingerprint());
        assertEquals(2, info.dims());
        assertEquals(List.of("body"), info.lexicalFields());
        assertEquals("vector", info.vectorField());
        assertEquals(List.of("vector", "passages"), List.of(info.sourceExcludes()));
    }

    private static final String PASSAGE_INDEX = """
        {"_meta": {"model_fingerprint": "%s", "dims": 3, "passages": {"window": 12, "stride": 6}},
         "properties": {"body": {"type": "text"}, "vector": {"type": "dense_vector", "dims": 3},
                        "passages": {"type": "nested", "properties": {"vector": {"type": "dense_vector", "dims": 3}}}}}
        """.formatted(FINGERPRINT);

    @Test
    void anIndexBuiltWithPassagesIsSearchedOnItsNestedVectors() {
        IndexModelInfo info = read("docs", PASSAGE_INDEX, null);
        assertEquals("passages.vector", info.vectorField());
        assertEquals(3, info.dims());
        assertEquals(List.of("vector", "passages"), List.of(info.sourceExcludes()));
        assertEquals("vector", read("docs", PASSAGE_INDEX, "vector").vectorField());      // asked for explicitly
        String reason = assertThrows(IllegalArgumentException.class,
            () -> read("docs", PASSAGE_INDEX, "passages.other")).getMessage();
        assertTrue(reason.startsWith("[vector_field]"), reason);
    }

    @Test
    void refusesAnotherFingerprintUnlessOverriddenAndAlwaysOtherDims() {
        IndexModelInfo info = new IndexModelInfo(FINGERPRINT, 2, List.of("body"), "vector");
        DssmModel model = DssmModel.build(EncoderTest.handConfig(), EncoderTest.handWeights()::get);   // dims 2, fingerprint 0...0
        String reason = assertThrows(IllegalArgumentException.class, () -> info.check(model, "hand", false)).getMessage();
        assertTrue(reason.startsWith("[model]") && reason.contains("allow_model_mismatch"), reason);
        info.check(model, "hand", true);
        IndexModelInfo otherDims = new IndexModelInfo(model.fingerprint(), 3, List.of("body"), "vector");
        reason = assertThrows(IllegalArgumentException.class, () -> otherDims.check(model, "hand", true)).getMessage();
        assertTrue(reason.contains("dims mismatch"), reason);
    }

    @Test
    void withoutBodyOrVectorField() {
        String plain = """
            {"properties": {"title": {"type": "text"}, "emb": {"type": "dense_vector", "dims": 4}}}""";
        IndexModelInfo info = read("plain", plain, "emb");
        assertEquals(null, info.fingerprint());
        assertEquals(List.of("title", "text"), info.lexicalFields());
        String reason = assertThrows(IllegalArgumentException.class,
            () -> read("plain", plain, "vector")).getMessage();
        assertTrue(reason.startsWith("[vector_field]"), reason);
    }
}
