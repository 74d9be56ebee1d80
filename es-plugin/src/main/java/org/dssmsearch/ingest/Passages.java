package org.dssmsearch.ingest;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

import org.dssmsearch.search.IndexModelInfo;
import org.elasticsearch.cluster.metadata.IndexAbstraction;
import org.elasticsearch.cluster.metadata.IndexMetadata;
import org.elasticsearch.cluster.metadata.MappingMetadata;
import org.elasticsearch.cluster.metadata.Metadata;
import org.elasticsearch.index.Index;

/**
 * A document's passages, as indexer/passages.py cuts them (passage_texts): windows of {@code window}
 * words every {@code stride} words of the text, each after the title, the last window ending at the
 * text's last word, the first {@code limit} only when a limit is given (0: all). A text of at most
 * {@code window} words has none. Words are what Python's {@code str.split()} gives: runs of the 29
 * characters for which {@code str.isspace()} is true. Checked against tests/golden/passage_cases.json.
 */
final class Passages {
    final int window;
    final int stride;
    final int limit;

    Passages(int window, int stride, int limit) {
        if (stride < 1 || stride > window || limit < 0) {
            throw new IllegalArgumentException(usage(window + ":" + stride + (limit > 0 ? ":" + limit : "")));
        }
        this.window = window;
        this.stride = stride;
        this.limit = limit;
    }

    /** "W:S" or "W:S:N", as `dssm index build --passages` takes it. */
    static Passages parse(String spec) {
        String[] parts = spec.trim().split(":", -1);
        try {
            if (parts.length == 2 || parts.length == 3) {
                int limit = parts.length == 3 ? Integer.parseInt(parts[2]) : 0;
                if (parts.length == 3 && limit < 1) throw new NumberFormatException();
                return new Passages(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]), limit);
            }
        } catch (NumberFormatException e) {
            // the message below
        }
        throw new IllegalArgumentException(usage(spec));
    }

    private static String usage(String got) {
        return "passages must be W:S or W:S:N, windows of W words every S words (1 <= S <= W), at most N >= 1 "
            + "of them per document (e.g. 12:6:2), got [" + got + "]";
    }

    /** Index UUID + mapping version -> its _meta.passages (parsing a mapping per document would cost). */
    private static final Map<String, Optional<Passages>> BY_MAPPING = new ConcurrentHashMap<>();

    /**
     * The passages of the index a name (index or alias: its write index) writes to, from its mapping's
     * {@code _meta.passages} {window, stride[, limit]} (indexer/es_index.py); null without them.
     */
    static Passages ofIndex(Metadata metadata, String name) {
        IndexAbstraction abstraction = name == null ? null : metadata.getIndicesLookup().get(name);
        Index write = abstraction == null ? null : abstraction.getWriteIndex();
        IndexMetadata index = write == null ? null : metadata.index(write);
        if (index == null) return null;
        String key = index.getIndexUUID() + "/" + index.getMappingVersion();
        return BY_MAPPING.computeIfAbsent(key, k -> Optional.ofNullable(fromMapping(index.mapping()))).orElse(null);
    }

    @SuppressWarnings("unchecked")
    static Passages fromMapping(MappingMetadata mapping) {
        Object meta = mapping == null ? null : mapping.sourceAsMap().get("_meta");
        if (!(meta instanceof Map<?, ?> metaMap) || !(metaMap.get(IndexModelInfo.PASSAGES_FIELD) instanceof Map<?, ?> spec)) return null;
        Map<String, Object> values = (Map<String, Object>) spec;
        Object limit = values.get("limit");
        return new Passages(((Number) values.get("window")).intValue(), ((Number) values.get("stride")).intValue(),
                            limit instanceof Number n ? n.intValue() : 0);
    }

    /** The passage texts of one document (title may be empty). */
    List<String> texts(String title, String text) {
        List<String> words = words(text);
        List<String> out = new ArrayList<>();
        if (words.size() <= window) return out;
        List<Integer> starts = new ArrayList<>();
        for (int start = 0; start + window <= words.size(); start += stride) starts.add(start);
        if (starts.get(starts.size() - 1) + window < words.size()) starts.add(words.size() - window);
        int count = limit > 0 ? Math.min(limit, starts.size()) : starts.size();
        for (int n = 0; n < count; n++) {
            List<String> piece = words.subList(starts.get(n), starts.get(n) + window);
            out.add(title.isEmpty() ? String.join(" ", piece) : title + " " + String.join(" ", piece));
        }
        return out;
    }

    /** Python's {@code text.split()}: the non-empty runs between whitespace characters. */
    static List<String> words(String text) {
        List<String> words = new ArrayList<>();
        int start = -1;
        for (int i = 0; i < text.length(); i++) {
            if (isPythonSpace(text.charAt(i))) {
                if (start >= 0) words.add(text.substring(start, i));
                start = -1;
            } else if (start < 0) {
                start = i;
            }
        }
        if (start >= 0) words.add(text.substring(start));
        return words;
    }

    /** Python 3's {@code str.isspace()} (all 29 such characters are in the BMP, so a char is enough). */
    static boolean isPythonSpace(char c) {
        return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680
            || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f
            || c == 0x3000;
    }
}
