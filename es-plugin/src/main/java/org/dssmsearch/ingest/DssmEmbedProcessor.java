package org.dssmsearch.ingest;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Supplier;

import org.dssmsearch.model.ModelRegistry;
import org.dssmsearch.search.IndexModelInfo;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.client.internal.Client;
import org.elasticsearch.cluster.metadata.Metadata;
import org.elasticsearch.cluster.service.ClusterService;
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
 * Into an index built with passages ({@code _meta.passages}, {@code dssm index build}'s default 12:6:2;
 * or with an explicit {@code "passages": "12:6:2"}; {@code "none"}: never) it also writes the nested
 * {@code passages} field as indexer/es_bulk.py does: {@code [{target: whole vector},
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
    private final String passagesSetting;   // "auto" (the target index's _meta.passages), "none", or W:S[:N]
    private final Passages passages;        // the parsed W:S[:N], else null
    private final String passagesField;
    private final Supplier<Metadata> metadata;

    DssmEmbedProcessor(String tag, String description, ModelRegistry registry, Client client, Executor executor,
                       String model, List<String> fields, String targetField, boolean ignoreMissing,
                       String passagesSetting, Passages passages, String passagesField, Supplier<Metadata> metadata) {
        super(tag, description);
        this.registry = registry;
        this.client = client;
        this.executor = executor;
        this.model = model;
        this.fields = fields;
        this.targetField = targetField;
        this.ignoreMissing = ignoreMissing;
        this.passagesSetting = passagesSetting;
        this.passages = passages;
        this.passagesField = passagesField;
        this.metadata = metadata;
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
        List<String> passageTexts;
        try {
            Passages cut = passagesFor(document);
            passageTexts = cut == null ? null : cut.texts(fieldText(document, fields.size() > 1 ? fields.get(0) : null),
                                                          fieldText(document, fields.get(fields.size() - 1)));
        } catch (Exception e) {
            handler.accept(null, e);
            return;
        }
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

    /** The passages to write into this document's index, or null. */
    private Passages passagesFor(IngestDocument document) {
        if (passagesSetting.equals("none")) return null;
        if (passages != null) return passages;
        String index = document.getMetadata().getIndex();
        Passages fromIndex = Passages.ofIndex(metadata.get(), index);
        if (fromIndex != null && fields.size() > 2) {
            throw new IllegalArgumentException("dssm_embed: index [" + index + "] has passages (_meta.passages); give "
                + "fields [title, text] or [text], or set passages to none");
        }
        return fromIndex;
    }

    private static List<Float> values(float[] vector) {
        List<Float> values = new ArrayList<>(vector.length);
        for (float v : vector) values.add(v);
        return values;
    }

    /** One field's text for passages ("" when absent; a list's non-empty items joined by newlines). */
    private static String fieldText(IngestDocument document, String field) {
        return field == null ? "" : String.join("\n", nonEmptyValues(document, field));
    }

    /** A field's non-empty values as strings: its items when it is a list; none when it is absent. */
    private static List<String> nonEmptyValues(IngestDocument document, String field) {
        List<String> values = new ArrayList<>();
        if (!document.hasField(field)) return values;
        Object value = document.getFieldValue(field, Object.class);
        for (Object item : value instanceof List<?> list ? list : java.util.Collections.singletonList(value)) {
            if (item != null && !item.toString().isEmpty()) values.add(item.toString());
        }
        return values;
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
            anyPresent |= document.hasField(field);
            parts.addAll(nonEmptyValues(document, field));
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
     *  {@code passages} ("auto": the target index's _meta.passages, the default; "none"; or "W:S[:N]") and
     *  {@code passages_field} (default "passages"). */
    public static final class Factory implements Processor.Factory {
        private final ModelRegistry registry;
        private final Client client;
        private final Executor executor;
        private final Supplier<Metadata> metadata;

        public Factory(ModelRegistry registry, Client client, java.util.function.Consumer<Runnable> genericExecutor,
                Supplier<ClusterService> clusterService) {
            this.registry = registry;
            this.client = client;
            this.executor = genericExecutor::accept;
            this.metadata = () -> clusterService.get().state().metadata();
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
            String spec = ConfigurationUtils.readStringProperty(TYPE, tag, config, "passages", "auto");
            String passagesField = ConfigurationUtils.readStringProperty(TYPE, tag, config, "passages_field",
                                                                         IndexModelInfo.PASSAGES_FIELD);
            Passages passages = null;
            if (!spec.equals("auto") && !spec.equals("none")) {
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
                                          spec, passages, passagesField, metadata);
        }
    }
}
