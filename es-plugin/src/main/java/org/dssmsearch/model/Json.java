package org.dssmsearch.model;

import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Typed reads from parsed JSON maps (config.json, request bodies); every failure is an IllegalArgumentException
 * naming the field (HTTP 400). Also Python's string order, which canonical JSON keys and fusion ties both use.
 */
public final class Json {
    private Json() {}

    /** Python's string order: by code point (Java's compareTo orders UTF-16 units). */
    public static final Comparator<String> CODE_POINT_ORDER = (a, b) -> {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i), cb = b.codePointAt(j);
            if (ca != cb) return Integer.compare(ca, cb);
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    };

    public static int intValue(Map<String, ?> map, String key, int defaultValue) {
        Object value = map.get(key);
        if (value == null) return defaultValue;
        if (value instanceof Number number && number.doubleValue() == Math.rint(number.doubleValue())) {
            long asLong = number.longValue();
            if (asLong >= Integer.MIN_VALUE && asLong <= Integer.MAX_VALUE) return (int) asLong;
        }
        throw new IllegalArgumentException("[" + key + "] must be an integer, got [" + value + "]");
    }

    public static double doubleValue(Map<String, ?> map, String key, double defaultValue) {
        Object value = map.get(key);
        if (value == null) return defaultValue;
        if (value instanceof Number number && Double.isFinite(number.doubleValue())) return number.doubleValue();
        throw new IllegalArgumentException("[" + key + "] must be a number, got [" + value + "]");
    }

    public static boolean booleanValue(Map<String, ?> map, String key, boolean defaultValue) {
        Object value = map.get(key);
        if (value == null) return defaultValue;
        if (value instanceof Boolean b) return b;
        throw new IllegalArgumentException("[" + key + "] must be true or false, got [" + value + "]");
    }

    public static String stringValue(Map<String, ?> map, String key, String defaultValue) {
        Object value = map.get(key);
        if (value == null) return defaultValue;
        if (value instanceof String s) return s;
        throw new IllegalArgumentException("[" + key + "] must be a string, got [" + value + "]");
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> objectValue(Map<String, ?> map, String key) {
        Object value = map.get(key);
        if (value == null) return null;
        if (value instanceof Map<?, ?> m) return (Map<String, Object>) m;
        throw new IllegalArgumentException("[" + key + "] must be a JSON object, got [" + value + "]");
    }

    public static List<?> listValue(Map<String, ?> map, String key) {
        Object value = map.get(key);
        if (value == null) return null;
        if (value instanceof List<?> list) return list;
        throw new IllegalArgumentException("[" + key + "] must be a JSON array, got [" + value + "]");
    }

    static int[] intArray(Object value, String what) {
        if (!(value instanceof List<?> list)) throw new IllegalArgumentException("[" + what + "] must be an array of integers");
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
                throw new IllegalArgumentException("[" + what + "] must be an array of integers, got [" + list.get(i) + "]");
            }
            out[i] = n.intValue();
        }
        return out;
    }
}
