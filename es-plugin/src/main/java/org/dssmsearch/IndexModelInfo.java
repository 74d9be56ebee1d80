package org.dssmsearch;

import java.util.List;
import java.util.Map;

import org.elasticsearch.cluster.metadata.IndexMetadata;
import org.elasticsearch.cluster.metadata.MappingMetadata;
import org.elasticsearch.cluster.metadata.Metadata;

/**
 * What an index's mapping says: {@code _meta.model_fingerprint} (written by the Python indexer), the dims
 * of the dense_vector field (or {@code _meta.dims}), and the default BM25 fields: {@code body} when every
 * index maps it (the Python indexer's title + text field, which its lexical search uses), else title and
 * text. Read from the local cluster state.
 */
record IndexModelInfo(String fingerprint, Integer dims, List<String> lexicalFields) {
    static final String FINGERPRINT_KEY = "model_fingerprint";
    /** indexer/es_index.py LEXICAL_FIELD: title + text copied into one field, which its BM25 searches. */
    static final String BODY_FIELD = "body";
    static final List<String> TITLE_AND_TEXT = List.of("title", "text");

    static IndexModelInfo read(Metadata metadata, String[] indices, String vectorField) {
        List<Map<String, Object>> mappings = new java.util.ArrayList<>();
        for (String name : indices) {
            IndexMetadata index = metadata.index(name);
            MappingMetadata mapping = index == null ? null : index.mapping();
            mappings.add(mapping == null ? Map.of() : mapping.sourceAsMap());
        }
        return fromMappings(indices, mappings, vectorField);
    }

    /** The same from parsed mappings ({@code {"_meta": ..., "properties": ...}}), one per index name. */
    @SuppressWarnings("unchecked")
    static IndexModelInfo fromMappings(String[] indices, List<Map<String, Object>> mappings, String vectorField) {
        String fingerprint = null;
        Integer dims = null;
        boolean allHaveBody = true;
        for (int i = 0; i < indices.length; i++) {
            Map<String, Object> source = mappings.get(i);
            Map<String, Object> meta = (Map<String, Object>) source.getOrDefault("_meta", Map.of());
            Map<String, Object> properties = (Map<String, Object>) source.getOrDefault("properties", Map.of());
            Map<String, Object> vector = (Map<String, Object>) properties.get(vectorField);
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
        return new IndexModelInfo(fingerprint, dims, allHaveBody ? List.of(BODY_FIELD) : TITLE_AND_TEXT);
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
