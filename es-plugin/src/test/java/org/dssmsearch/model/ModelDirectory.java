package org.dssmsearch.model;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.elasticsearch.common.xcontent.XContentHelper;
import org.elasticsearch.xcontent.json.JsonXContent;

/**
 * Reads an exported model directory (config.json + weights/*.f32) for the tests. Test code only:
 * the plugin never opens paths from a request; models reach the cluster through PUT /_dssm/model/{name}.
 */
public final class ModelDirectory {
    private ModelDirectory() {}

    public static Map<String, Object> readJson(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return XContentHelper.convertToMap(JsonXContent.jsonXContent, in, true);
        }
    }

    public static DssmModel load(Path directory) throws IOException {
        Map<String, Object> config = readJson(directory.resolve("config.json"));
        Map<String, byte[]> weights = new HashMap<>();
        for (DssmModel.WeightSpec spec : DssmModel.validateConfig(config)) {
            Path file = directory.resolve(spec.file()).normalize();
            if (!file.startsWith(directory.normalize())) throw new IllegalArgumentException("weight file outside the model directory: " + spec.file());
            weights.put(spec.name(), Files.readAllBytes(file));
        }
        return DssmModel.build(config, weights::get);
    }
}
