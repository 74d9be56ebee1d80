package org.dssmsearch;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import org.elasticsearch.common.xcontent.XContentHelper;
import org.elasticsearch.xcontent.json.JsonXContent;

/** The shared golden files in tests/golden (regenerate with `make golden`). */
public final class Golden {
    private Golden() {}

    public static Path dir() {
        return Path.of(System.getProperty("dssm.golden", "../tests/golden")).toAbsolutePath().normalize();
    }

    /** The golden file, or the test is skipped (reported by surefire) while the file does not exist yet. */
    public static Path require(String name) {
        Path path = dir().resolve(name);
        assumeTrue(Files.exists(path), "golden file " + path + " not generated yet (make golden)");
        return path;
    }

    public static Object readJson(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            // the top level may be an array: wrap it so the map parser accepts it
            byte[] body = in.readAllBytes();
            byte[] wrapped = ("{\"v\":" + new String(body, java.nio.charset.StandardCharsets.UTF_8) + "}")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
            return XContentHelper.convertToMap(JsonXContent.jsonXContent, new java.io.ByteArrayInputStream(wrapped), true).get("v");
        }
    }
}
