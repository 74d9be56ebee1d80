package org.dssmsearch.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.elasticsearch.xcontent.XContentParserConfiguration;
import org.junit.jupiter.api.Test;

/** Search bodies: defaults, and the 400s naming their field. */
class SearchParamsTest {
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
}
