package org.dssmsearch.search;

import java.util.List;
import java.util.Map;
import java.util.Set;

import org.dssmsearch.model.Json;
import org.elasticsearch.index.query.AbstractQueryBuilder;
import org.elasticsearch.index.query.QueryBuilder;
import org.elasticsearch.xcontent.XContentParser;
import org.elasticsearch.xcontent.XContentParserConfiguration;
import org.elasticsearch.xcontent.json.JsonXContent;

/**
 * The body of {@code POST /{index}/_dssm/search}, validated: every problem is an IllegalArgumentException
 * (HTTP 400) whose message names the field. Defaults mirror indexer/fusion.py.
 */
public record SearchParams(String query, int size, int from, String model, boolean allowModelMismatch, String fusion,
                    double alpha, String norm, int rankConstant, int rankWindowSize, int numCandidates,
                    QueryBuilder filter, boolean explain, List<String> fields, String vectorField) {

    static final int MAX_WINDOW = 10_000;
    static final Set<String> KEYS = Set.of("query", "size", "from", "model", "allow_model_mismatch", "fusion", "alpha", "norm",
        "rank_constant", "rank_window_size", "num_candidates", "filter", "explain", "fields", "vector_field");

    public static SearchParams parse(Map<String, Object> body, XContentParserConfiguration parserConfig) {
        for (String key : body.keySet()) {
            if (!KEYS.contains(key)) throw new IllegalArgumentException("[" + key + "] is not a search parameter; choose from " + new java.util.TreeSet<>(KEYS));
        }
        String query = Json.stringValue(body, "query", null);
        if (query == null) throw new IllegalArgumentException("[query] is required: the text to search for");
        int size = Json.intValue(body, "size", 10);
        if (size < 0 || size > MAX_WINDOW) throw new IllegalArgumentException("[size] must be in [0, " + MAX_WINDOW + "], got [" + size + "]");
        int from = Json.intValue(body, "from", 0);
        if (from < 0) throw new IllegalArgumentException("[from] must be >= 0, got [" + from + "]");
        if (from + size > MAX_WINDOW) throw new IllegalArgumentException("[from] + [size] must be <= " + MAX_WINDOW + ", got [" + (from + size) + "]");
        String fusion = Json.stringValue(body, "fusion", "linear");
        if (!Fusion.METHODS.contains(fusion)) throw new IllegalArgumentException("[fusion] unknown [" + fusion + "]; choose from " + new java.util.TreeSet<>(Fusion.METHODS));
        double alpha = Json.doubleValue(body, "alpha", 0.5);
        if (!(alpha >= 0 && alpha <= 1)) throw new IllegalArgumentException("[alpha] must be in [0, 1], got [" + alpha + "]");
        String norm = Json.stringValue(body, "norm", "zscore");   // FORMAT.md 3: zscore by default
        if (!Fusion.NORMS.contains(norm)) throw new IllegalArgumentException("[norm] unknown [" + norm + "]; choose from " + new java.util.TreeSet<>(Fusion.NORMS));
        int rankConstant = Json.intValue(body, "rank_constant", 60);
        if (rankConstant < 1) throw new IllegalArgumentException("[rank_constant] must be >= 1, got [" + rankConstant + "]");
        int window = Json.intValue(body, "rank_window_size", from + size);
        if (window < from + size || window > MAX_WINDOW) {
            throw new IllegalArgumentException("[rank_window_size] must be in [from + size, " + MAX_WINDOW + "], got [" + window + "]");
        }
        // as indexer/es_index.py: min(10000, max(100, 10 * k))
        int numCandidates = Json.intValue(body, "num_candidates", Math.min(MAX_WINDOW, Math.max(100, 10 * window)));
        if (numCandidates < window || numCandidates > MAX_WINDOW) {
            throw new IllegalArgumentException("[num_candidates] must be in [rank_window_size, " + MAX_WINDOW + "], got [" + numCandidates + "]");
        }
        QueryBuilder filter = parseFilter(body.get("filter"), parserConfig);
        List<String> fields = stringList(body, "fields", null);   // null: IndexModelInfo.lexicalFields()
        String vectorField = Json.stringValue(body, "vector_field", null);   // null: IndexModelInfo chooses
        return new SearchParams(query, size, from, Json.stringValue(body, "model", null), Json.booleanValue(body, "allow_model_mismatch", false),
            fusion, alpha, norm, rankConstant, window, numCandidates, filter, Json.booleanValue(body, "explain", false), fields, vectorField);
    }

    private static List<String> stringList(Map<String, Object> body, String key, List<String> defaultValue) {
        List<?> list = Json.listValue(body, key);
        if (list == null) return defaultValue;
        if (list.isEmpty() || !list.stream().allMatch(item -> item instanceof String)) {
            throw new IllegalArgumentException("[" + key + "] must be a non-empty array of field names");
        }
        return list.stream().map(String.class::cast).toList();
    }

    /** The filter object parsed as an Elasticsearch query (term, range, bool, ...). */
    private static QueryBuilder parseFilter(Object filter, XContentParserConfiguration parserConfig) {
        if (filter == null) return null;
        if (!(filter instanceof Map<?, ?> map)) throw new IllegalArgumentException("[filter] must be a JSON object (a query such as {\"term\": {...}}), got [" + filter + "]");
        try {
            String json = org.elasticsearch.common.Strings.toString(org.elasticsearch.xcontent.XContentFactory.jsonBuilder().map(castMap(map)));
            try (XContentParser parser = JsonXContent.jsonXContent.createParser(parserConfig, json)) {
                return AbstractQueryBuilder.parseTopLevelQuery(parser);
            }
        } catch (Exception e) {
            throw new IllegalArgumentException("[filter] is not a valid query: " + e.getMessage(), e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> castMap(Map<?, ?> map) {
        return (Map<String, Object>) map;
    }
}
