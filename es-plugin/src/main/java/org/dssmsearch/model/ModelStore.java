package org.dssmsearch.model;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The stored form of a model in the {@value #INDEX} index: one meta document per name and the weights,
 * concatenated in manifest order, cut into chunk documents keyed by fingerprint (content addressed, so two
 * names for the same model share them). Both ways the fingerprint is computed ({@link ModelFingerprint}), never
 * taken on trust: an upload must give the fingerprint it claims, stored chunks the one they are stored under.
 * Pure data: no I/O here (see {@link ModelRegistry}).
 */
public final class ModelStore {
    /** Hidden, dot-prefixed: not matched by wildcards, and allowed without a deprecation warning. */
    static final String INDEX = ".dssm-models";
    static final int CHUNK_BYTES = 4 * 1024 * 1024;

    private ModelStore() {}

    static String metaId(String name) {
        return "model:" + name;
    }

    static String chunkId(String fingerprint, int chunk) {
        return "chunk:" + fingerprint + ":" + chunk;
    }

    /** Settings and mappings of the registry index: one shard, a copy on every node (auto-expand). */
    static Map<String, Object> indexSettings() {
        return Map.of("index.number_of_shards", 1, "index.auto_expand_replicas", "0-all", "index.hidden", true);
    }

    static Map<String, Object> indexMapping() {
        Map<String, Object> properties = new LinkedHashMap<>();
        properties.put("kind", Map.of("type", "keyword"));
        properties.put("name", Map.of("type", "keyword"));
        properties.put("fingerprint", Map.of("type", "keyword"));
        properties.put("dims", Map.of("type", "integer"));
        properties.put("chunks", Map.of("type", "integer"));
        properties.put("bytes", Map.of("type", "long"));
        properties.put("created", Map.of("type", "date", "format", "epoch_millis"));
        properties.put("chunk", Map.of("type", "integer"));
        properties.put("config", Map.of("type", "object", "enabled", false));
        properties.put("data", Map.of("type", "binary"));
        return Map.of("dynamic", false, "properties", properties);
    }

    /** A validated upload: the model (decoded, ready to cache), the meta document and the chunk payloads. */
    public record Upload(DssmModel model, Map<String, Object> meta, List<byte[]> chunks) {}

    /**
     * Validates the PUT body {@code {"config": {...}, "weights": {"<manifest name>": "<base64 .f32 bytes>"}}}
     * and cuts the weights into chunks. Throws IllegalArgumentException naming the bad field.
     */
    @SuppressWarnings("unchecked")
    public static Upload parseUpload(String name, Map<String, Object> body) {
        Map<String, Object> config = Json.objectValue(body, "config");
        if (config == null) throw new IllegalArgumentException("[config] is missing: give the exported config.json object");
        Map<String, Object> encoded = Json.objectValue(body, "weights");
        if (encoded == null) throw new IllegalArgumentException("[weights] is missing: give {\"<weight name>\": \"<base64 of the .f32 file>\"}");
        for (String key : body.keySet()) {
            if (!key.equals("config") && !key.equals("weights")) throw new IllegalArgumentException("[" + key + "] is not a model field; use config and weights");
        }
        List<DssmModel.WeightSpec> manifest = DssmModel.validateConfig(config);
        Map<String, byte[]> weights = new HashMap<>();
        for (Map.Entry<String, Object> entry : encoded.entrySet()) {
            if (!(entry.getValue() instanceof String text)) throw new IllegalArgumentException("[weights." + entry.getKey() + "] must be a base64 string");
            try {
                weights.put(entry.getKey(), Base64.getDecoder().decode(text));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("[weights." + entry.getKey() + "] is not valid base64: " + e.getMessage());
            }
        }
        for (String key : weights.keySet()) {
            if (manifest.stream().noneMatch(spec -> spec.name().equals(key))) {
                throw new IllegalArgumentException("[weights." + key + "] is not in the config's weight manifest");
            }
        }
        DssmModel model = DssmModel.build(config, weights::get);
        ModelFingerprint.Digest digest = ModelFingerprint.of(config);
        long total = 0;
        for (DssmModel.WeightSpec spec : manifest) {
            digest.update(weights.get(spec.name()));
            total += weights.get(spec.name()).length;
        }
        String computed = digest.hex();
        if (!computed.equals(model.fingerprint())) {
            throw new IllegalArgumentException("config.fingerprint [" + model.fingerprint() + "] does not match the uploaded model: its config"
                + " and weights give [" + computed + "] (docs/FORMAT.md 2.3); upload the exported directory unchanged, or export it again");
        }
        ByteBuffer all = ByteBuffer.allocate(Math.toIntExact(total));
        for (DssmModel.WeightSpec spec : manifest) all.put(weights.get(spec.name()));
        List<byte[]> chunks = new ArrayList<>();
        for (int offset = 0; offset < total; offset += CHUNK_BYTES) {
            int length = (int) Math.min(CHUNK_BYTES, total - offset);
            byte[] chunk = new byte[length];
            System.arraycopy(all.array(), offset, chunk, 0, length);
            chunks.add(chunk);
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("kind", "model");
        meta.put("name", name);
        meta.put("fingerprint", model.fingerprint());
        meta.put("dims", model.dims());
        meta.put("chunks", chunks.size());
        meta.put("bytes", total);
        meta.put("created", System.currentTimeMillis());
        meta.put("config", config);
        return new Upload(model, meta, chunks);
    }

    /**
     * Rebuilds a model from its meta document and its chunks (in chunk order), after checking that the stored
     * config and bytes give the stored fingerprint; a changed or damaged model is an IllegalStateException.
     */
    @SuppressWarnings("unchecked")
    static DssmModel decode(Map<String, Object> meta, List<byte[]> chunks) {
        Map<String, Object> config = (Map<String, Object>) meta.get("config");
        List<DssmModel.WeightSpec> manifest = DssmModel.validateConfig(config);
        long total = 0;
        for (byte[] chunk : chunks) total += chunk.length;
        ByteBuffer all = ByteBuffer.allocate(Math.toIntExact(total));
        for (byte[] chunk : chunks) all.put(chunk);
        Map<String, byte[]> weights = new HashMap<>();
        ModelFingerprint.Digest digest = ModelFingerprint.of(config);
        int offset = 0;
        for (DssmModel.WeightSpec spec : manifest) {
            int length = Math.toIntExact(spec.floats() * 4);
            if (offset + length > total) throw new IllegalStateException("stored model [" + meta.get("name") + "] is truncated; upload it again");
            byte[] bytes = new byte[length];
            System.arraycopy(all.array(), offset, bytes, 0, length);
            weights.put(spec.name(), bytes);
            digest.update(bytes);
            offset += length;
        }
        String computed = digest.hex();
        Object stored = meta.get("fingerprint");
        if (offset != total || !computed.equals(stored) || !computed.equals(config.get("fingerprint"))) {
            throw new IllegalStateException("stored model [" + meta.get("name") + "] fails its fingerprint check: stored as [" + stored
                + "], its stored config and chunks give [" + computed + "]" + (offset != total ? " (" + (total - offset) + " bytes too many)" : "")
                + "; it is not served: upload the model again with PUT /_dssm/model/" + meta.get("name"));
        }
        return DssmModel.build(config, weights::get);
    }
}
