package org.dssmsearch.model;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * The model fingerprint of docs/FORMAT.md 2.3, computed here as dssm/export.py {@code fingerprint} does:
 * sha256 (hex) over the UTF-8 bytes of
 * {@code json.dumps(config without "fingerprint" and "training", sort_keys=True, separators=(",", ":"))}
 * followed by the weight bytes in manifest order. The registry computes it from what it received and
 * from what it reads back, so a model is never stored or served under a fingerprint its bytes do not give.
 */
final class ModelFingerprint {
    private ModelFingerprint() {}

    /** Streams a fingerprint: {@code ModelFingerprint.of(config).update(weights...).hex()}. */
    static final class Digest {
        private final MessageDigest sha256;

        private Digest(byte[] canonicalConfig) {
            try {
                sha256 = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("the JVM has no SHA-256", e);
            }
            sha256.update(canonicalConfig);
        }

        Digest update(byte[] bytes) {
            sha256.update(bytes);
            return this;
        }

        String hex() {
            return HexFormat.of().formatHex(sha256.digest());
        }
    }

    static Digest of(Map<String, Object> config) {
        return new Digest(canonicalConfig(config).getBytes(StandardCharsets.UTF_8));
    }

    /** The config as Python's canonical JSON, without "fingerprint" and "training". */
    static String canonicalConfig(Map<String, Object> config) {
        Map<String, Object> core = new java.util.HashMap<>(config);
        core.remove("fingerprint");
        core.remove("training");
        StringBuilder out = new StringBuilder();
        write(out, core);
        return out.toString();
    }

    /** {@code json.dumps(value, sort_keys=True, separators=(",", ":"))} with Python's defaults (ensure_ascii). */
    static void write(StringBuilder out, Object value) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (value instanceof String s) {
            writeString(out, s);
        } else if (value instanceof Integer || value instanceof Long || value instanceof Short || value instanceof Byte
            || value instanceof BigInteger) {
            out.append(value);
        } else if (value instanceof Number n) {
            out.append(pythonFloat(n.doubleValue()));
        } else if (value instanceof Map<?, ?> map) {
            List<String> keys = new ArrayList<>();
            for (Object key : map.keySet()) keys.add(String.valueOf(key));
            keys.sort(Json.CODE_POINT_ORDER);   // Python sorts str keys by code point, as ids are ordered
            out.append('{');
            for (int i = 0; i < keys.size(); i++) {
                if (i > 0) out.append(',');
                writeString(out, keys.get(i));
                out.append(':');
                write(out, map.get(keys.get(i)));
            }
            out.append('}');
        } else if (value instanceof List<?> list) {
            out.append('[');
            for (int i = 0; i < list.size(); i++) {
                if (i > 0) out.append(',');
                write(out, list.get(i));
            }
            out.append(']');
        } else {
            throw new IllegalArgumentException("config holds a value JSON cannot carry: " + value.getClass().getSimpleName());
        }
    }

    /**
     * A JSON string as Python's ensure_ascii writes it: \" \\ \n \r \t \b \f, any other character outside
     * ' '..'~' as \\uxxxx (lowercase hex, per UTF-16 unit: U+10000 and above as a surrogate pair).
     */
    private static void writeString(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20 || c > 0x7e) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        out.append('"');
    }

    /**
     * Python's {@code float.__repr__}: the shortest decimal that reads back as the same double, written
     * positionally for exponents -4..15 ({@code 0.0001}, {@code 1e+16}, {@code 1e-05}, {@code 2.0}).
     */
    static String pythonFloat(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal exact = new BigDecimal(d);
        BigDecimal shortest = exact;
        for (int precision = 1; precision <= 17; precision++) {
            BigDecimal candidate = exact.round(new MathContext(precision, RoundingMode.HALF_EVEN));
            if (candidate.doubleValue() == d) {
                shortest = candidate;
                break;
            }
        }
        BigDecimal stripped = shortest.stripTrailingZeros();
        String digits = stripped.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - stripped.scale();            // d = 0.digits... * 10^(exponent+1)
        String sign = d < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
        }
        String plain = stripped.abs().toPlainString();
        return sign + (plain.contains(".") ? plain : plain + ".0");
    }
}
