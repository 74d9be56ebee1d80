package org.dssmsearch.search;

import java.util.List;
import java.util.Map;

import org.dssmsearch.model.DssmModel;
import org.elasticsearch.cluster.metadata.IndexMetadata;
import org.elasticsearch.cluster.metadata.MappingMetadata;
import org.elasticsearch.cluster.metadata.Metadata;

/**
 * What an index's mapping says: {@code _meta.model_fingerprint} (written by the Python indexer), the dims
 * of the dense_vector field (or {@code _meta.dims}), the default BM25 fields: {@code body} when every
 * index maps it (the Python indexer's title + text field, which its lexical search uses), else title and
 * text, and the vector field kNN searches: the request's {@code vector_field}, else {@code passages.vector}
 * when every index was built with passages ({@code _meta.passages}: nested kNN ranks a document by its
 * best passage, as indexer/es_index.py does), else {@code vector}. Read from the local cluster state.
 */
public record IndexModelInfo(String fingerprint, Integer dims, List<String> lexicalFields, String vectorField) {
    public static final String FINGERPRINT_KEY = "model_fingerprint";
    static final String VECTOR_FIELD = "vector";
    /** indexer/es_bulk.py PASSAGES_FIELD: the nested passage vectors, the whole document's first. */
    public static final String PASSAGES_FIELD = "passages";
    static final String PASSAGE_VECTOR_FIELD = PASSAGES_FIELD + "." + VECTOR_FIELD;
    /** indexer/es_index.py LEXICAL_FIELD: title + text copied into one field, which its BM25 searches. */
    static final String BODY_FIELD = "body";
    static final List<String> TITLE_AND_TEXT = List.of("title", "text");

    public static IndexModelInfo read(Metadata metadata, String[] indices, String vectorField) {
        List<Map<String, Object>> mappings = new java.util.ArrayList<>();
        for (String name : indices) {
            IndexMetadata index = metadata.index(name);
            MappingMetadata mapping = index == null ? null : index.mapping();
            mappings.add(mapping == null ? Map.of() : mapping.sourceAsMap());
        }
        return fromMappings(indices, mappings, vectorField);
    }

    /** The same from parsed mappings ({@code {"_meta": ..., "properties": ...}}), one per index name;
     *  {@code requestedField} null: chosen as the class comment says. */
    @SuppressWarnings("unchecked")
    static IndexModelInfo fromMappings(String[] indices, List<Map<String, Object>> mappings, String requestedField) {
        String fingerprint = null;
        Integer dims = null;
        boolean allHaveBody = true;
        String vectorField = requestedField != null ? requestedField
            : mappings.stream().allMatch(m -> m.get("_meta") instanceof Map<?, ?> meta && meta.get(PASSAGES_FIELD) != null)
                ? PASSAGE_VECTOR_FIELD : VECTOR_FIELD;
        for (int i = 0; i < indices.length; i++) {
            Map<String, Object> source = mappings.get(i);
            Map<String, Object> meta = (Map<String, Object>) source.getOrDefault("_meta", Map.of());
            Map<String, Object> properties = (Map<String, Object>) source.getOrDefault("properties", Map.of());
            Map<String, Object> vector = field(properties, vectorField);
            if (vector == null || !"dense_vector".equals(vector.get("type"))) {
                throw new IllegalArgumentException("[vector_field] index [" + indices[i] + "] has no dense_vector field [" + vectorField + "]");
            }
            allHaveBody &= properties.get(BODY_FIELD) instanceof Map<?, ?> body && "text".equals(body.get("type"));
            Object indexDims = vector.containsKey("dims") ? vector.get("dims") : meta.get("dims");
            Object indexFingerprint = meta.get(FINGERPRINT_KEY);
            if (i == 0) {
                fingerprint = indexFingerprint == null ? null : indexFingerprint.toString();
                dims = indexDims instanceof Number n ? n.intValue() : null;
            } else if (!java.util.Objects.equals(fingerprint, indexFingerprint == null ? null : indexFingerprint.toString())) {
                throw new IllegalArgumentException("[index] the indices disagree on _meta." + FINGERPRINT_KEY + "; search them separately");
            }
        }
        return new IndexModelInfo(fingerprint, dims, allHaveBody ? List.of(BODY_FIELD) : TITLE_AND_TEXT, vectorField);
    }

    /** A field's mapping by dotted path through object and nested properties; null when absent. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> field(Map<String, Object> properties, String path) {
        Map<String, Object> current = null;
        for (String part : path.split("\\.")) {
            if (properties == null || !(properties.get(part) instanceof Map<?, ?> found)) return null;
            current = (Map<String, Object>) found;
            properties = current.get("properties") instanceof Map<?, ?> inner ? (Map<String, Object>) inner : null;
        }
        return current;
    }

    /** The _source fields hits leave out: the vectors (the top-level one and the nested passages). */
    String[] sourceExcludes() {
        return vectorField.equals(PASSAGE_VECTOR_FIELD) ? new String[] { VECTOR_FIELD, PASSAGES_FIELD }
            : new String[] { vectorField, PASSAGES_FIELD };
    }

    /** Refuses a model the index was not built with (unless overridden) and any dims mismatch. */
    void check(DssmModel model, String modelName, boolean allowMismatch) {
        if (dims != null && dims != model.dims()) {
            throw new IllegalArgumentException("[model] dims mismatch: model [" + modelName + "] makes " + model.dims()
                + "-dimensional vectors, the index's vector field has " + dims);
        }
        if (fingerprint != null && !fingerprint.equals(model.fingerprint()) && !allowMismatch) {
            throw new IllegalArgumentException("[model] model [" + modelName + "] has fingerprint " + model.fingerprint()
                + " but the index was built with " + fingerprint + " (_meta." + FINGERPRINT_KEY
                + "); use that model, or pass \"allow_model_mismatch\": true to override");
        }
    }
}
