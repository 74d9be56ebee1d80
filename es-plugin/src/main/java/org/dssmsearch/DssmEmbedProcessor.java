package org.dssmsearch;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;

import org.elasticsearch.action.ActionListener;
import org.elasticsearch.client.internal.Client;
import org.elasticsearch.ingest.AbstractProcessor;
import org.elasticsearch.ingest.ConfigurationUtils;
import org.elasticsearch.ingest.IngestDocument;
import org.elasticsearch.ingest.Processor;

/**
 * Ingest processor {@code dssm_embed}: computes a document's vector in-cluster with the document tower,
 * equal to {@code Encoder.encode([document.encoder_text()], side="document")} in Python.
 * <pre>
 * {"dssm_embed": {"model": "demo", "fields": ["title", "text"], "target_field": "vector"}}
 * </pre>
 * The text is the present, non-empty values of the fields joined by a newline (Python's
 * {@code f"{title}\n{text}"}). A text without features has the zero vector, which a cosine
 * {@code dense_vector} rejects, so then the target field is left unset (the document has no kNN match).
 * <p>
 * With {@code "passages": "12:6:2"} (an index built {@code dssm index build --passages 12:6:2}) it also
 * writes the nested {@code passages} field as indexer/es_bulk.py does: {@code [{target: whole vector},
 * {target: first passage's vector}, ...]}, zero vectors left out, the passages cut by {@link Passages}
 * from the last field's text after the first field's title ({@code fields: [title, text]}, or
 * {@code [text]}).
 */
public final class DssmEmbedProcessor extends AbstractProcessor {
    public static final String TYPE = "dssm_embed";
    /** How long a node trusts its name -> fingerprint binding during ingest before reading it again. */
    static final long BINDING_MAX_AGE_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final ModelRegistry registry;
    private final Client client;
    private final Executor executor;
    private final String model;
    private final List<String> fields;
    private final String targetField;
    private final boolean ignoreMissing;
    private final Passages passages;        // null: no nested passages written
    private final String passagesField;

    DssmEmbedProcessor(String tag, String description, ModelRegistry registry, Client client, Executor executor,
                       String model, List<String> fields, String targetField, boolean ignoreMissing,
                       Passages passages, String passagesField) {
        super(tag, description);
        this.registry = registry;
        this.client = client;
        this.executor = executor;
        this.model = model;
        this.fields = fields;
        this.targetField = targetField;
        this.ignoreMissing = ignoreMissing;
        this.passages = passages;
        this.passagesField = passagesField;
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    public boolean isAsync() {
        return true;
    }

    @Override
    public void execute(IngestDocument document, BiConsumer<IngestDocument, Exception> handler) {
        String text;
        try {
            text = documentText(document);
        } catch (Exception e) {
            handler.accept(null, e);
            return;
        }
        if (text == null) {
            handler.accept(document, null);   // ignore_missing and none of the fields present
            return;
        }
        List<String> passageTexts = passages == null ? null : passages.texts(fieldText(document, fields.size() > 1 ? fields.get(0) : null),
                                                                          fieldText(document, fields.get(fields.size() - 1)));
        registry.byName(client, model, BINDING_MAX_AGE_NANOS, executor, ActionListener.wrap(loaded -> {
            float[] vector = loaded.model().documentVector(text);
            if (!isZero(vector)) document.setFieldValue(targetField, values(vector));
            if (passageTexts != null) {
                List<Map<String, Object>> nested = new ArrayList<>();
                if (!isZero(vector)) nested.add(Map.of(targetField, values(vector)));
                for (String passage : passageTexts) {
                    float[] each = loaded.model().documentVector(passage);
                    if (!isZero(each)) nested.add(Map.of(targetField, values(each)));
                }
                document.setFieldValue(passagesField, nested);
            }
            handler.accept(document, null);
        }, e -> handler.accept(null, e)));
    }

    private static List<Float> values(float[] vector) {
        List<Float> values = new ArrayList<>(vector.length);
        for (float v : vector) values.add(v);
        return values;
    }

    /** One field's text for passages ("" when absent; a list's non-empty items joined by newlines). */
    private static String fieldText(IngestDocument document, String field) {
        if (field == null || !document.hasField(field)) return "";
        Object value = document.getFieldValue(field, Object.class);
        if (value instanceof List<?> list) {
            List<String> parts = new ArrayList<>();
            for (Object item : list) if (item != null && !item.toString().isEmpty()) parts.add(item.toString());
            return String.join("\n", parts);
        }
        return value == null ? "" : value.toString();
    }

    @Override
    public IngestDocument execute(IngestDocument document) {
        throw new UnsupportedOperationException("dssm_embed runs asynchronously");
    }

    /** The fields' values joined by newlines; null when none is present and ignore_missing is set. */
    private String documentText(IngestDocument document) {
        List<String> parts = new ArrayList<>();
        boolean anyPresent = false;
        for (String field : fields) {
            if (!document.hasField(field)) continue;
            anyPresent = true;
            Object value = document.getFieldValue(field, Object.class);
            if (value instanceof List<?> list) {
                for (Object item : list) if (item != null && !item.toString().isEmpty()) parts.add(item.toString());
            } else if (value != null && !value.toString().isEmpty()) {
                parts.add(value.toString());
            }
        }
        if (!anyPresent) {
            if (ignoreMissing) return null;
            throw new IllegalArgumentException("dssm_embed: none of the fields " + fields + " is in the document; set ignore_missing to skip it");
        }
        return String.join("\n", parts);
    }

    private static boolean isZero(float[] vector) {
        for (float v : vector) if (v != 0f) return false;
        return true;
    }

    /** Reads {@code model}, {@code field} or {@code fields}, {@code target_field} (default "vector"), {@code ignore_missing},
     *  {@code passages} ("W:S[:N]", optional) and {@code passages_field} (default "passages"). */
    public static final class Factory implements Processor.Factory {
        private final ModelRegistry registry;
        private final Client client;
        private final Executor executor;

        Factory(ModelRegistry registry, Client client, java.util.function.Consumer<Runnable> genericExecutor) {
            this.registry = registry;
            this.client = client;
            this.executor = genericExecutor::accept;
        }

        @Override
        public Processor create(Map<String, Processor.Factory> factories, String tag, String description, Map<String, Object> config) {
            String model = ConfigurationUtils.readStringProperty(TYPE, tag, config, "model");
            try {
                ModelRegistry.validName(model);
            } catch (IllegalArgumentException e) {
                throw ConfigurationUtils.newConfigurationException(TYPE, tag, "model", e.getMessage());
            }
            String field = ConfigurationUtils.readOptionalStringProperty(TYPE, tag, config, "field");
            List<String> fields = ConfigurationUtils.readOptionalList(TYPE, tag, config, "fields");
            if ((field == null) == (fields == null)) {
                throw ConfigurationUtils.newConfigurationException(TYPE, tag, "fields", "give exactly one of [field] or [fields]");
            }
            List<String> all = field != null ? List.of(field) : List.copyOf(fields);
            if (all.isEmpty()) throw ConfigurationUtils.newConfigurationException(TYPE, tag, "fields", "must not be empty");
            String target = ConfigurationUtils.readStringProperty(TYPE, tag, config, "target_field", "vector");
            boolean ignoreMissing = ConfigurationUtils.readBooleanProperty(TYPE, tag, config, "ignore_missing", false);
            String spec = ConfigurationUtils.readOptionalStringProperty(TYPE, tag, config, "passages");
            String passagesField = ConfigurationUtils.readStringProperty(TYPE, tag, config, "passages_field", "passages");
            Passages passages = null;
            if (spec != null) {
                try {
                    passages = Passages.parse(spec);
                } catch (IllegalArgumentException e) {
                    throw ConfigurationUtils.newConfigurationException(TYPE, tag, "passages", e.getMessage());
                }
                if (all.size() > 2) {
                    throw ConfigurationUtils.newConfigurationException(TYPE, tag, "fields",
                        "with [passages] give [title, text] or [text]: the passages are cut from the last field after the first");
                }
            }
            return new DssmEmbedProcessor(tag, description, registry, client, executor, model, all, target, ignoreMissing,
                                          passages, passagesField);
        }
    }
}
