package org.dssmsearch.model;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * DSSM word hashing (Huang et al. 2013, section 3.2) with a stable FNV-1a hash: text to feature ids,
 * bit for bit equal to {@code dssm/featurise.py} (docs/FORMAT.md section 1).
 *
 * <p>{@code ids("good")} hashes the letter trigrams {@code #go, goo, ood, od#}. Everything counts in
 * code points, never UTF-16 units.
 */
public final class Featuriser {

    /** The {@code featuriser} block of config.json; defaults as in FORMAT.md. */
    public record Config(int buckets, int maxFeatures, int maxChars, int wordNgrams) {
        public static final Config DEFAULT = new Config(32768, 512, 20000, 0);

        public Config {
            if (buckets < 1) throw new IllegalArgumentException("featuriser.buckets must be >= 1, got " + buckets);
            if (maxFeatures < 0) throw new IllegalArgumentException("featuriser.max_features must be >= 0, got " + maxFeatures);
            if (maxChars < 0) throw new IllegalArgumentException("featuriser.max_chars must be >= 0, got " + maxChars);
            if (wordNgrams < 0 || wordNgrams > 2) {
                throw new IllegalArgumentException("featuriser.word_ngrams must be 0, 1 or 2, got " + wordNgrams);
            }
        }

        /** Reads the featuriser block of config.json; missing keys take the FORMAT.md defaults. */
        public static Config fromMap(Map<String, ?> map) {
            return new Config(
                Json.intValue(map, "buckets", DEFAULT.buckets),
                Json.intValue(map, "max_features", DEFAULT.maxFeatures),
                Json.intValue(map, "max_chars", DEFAULT.maxChars),
                Json.intValue(map, "word_ngrams", DEFAULT.wordNgrams)
            );
        }
    }

    private static final int FNV_OFFSET = 0x811C9DC5;
    private static final int FNV_PRIME = 0x01000193;

    private final Config config;

    public Featuriser(Config config) {
        this.config = config;
    }

    public Config config() {
        return config;
    }

    /** Feature ids of a text, in order, duplicates kept, at most {@code max_features}; each in [1, buckets]. */
    public int[] ids(String text) {
        String normalised = normalise(cut(text, config.maxChars()));
        IdBuffer out = new IdBuffer(config.maxFeatures());
        int[] codePoints = normalised.codePoints().toArray();
        int[][] previous = { null };
        scanTokens(codePoints, (start, end) -> {
            int[] token = Arrays.copyOfRange(codePoints, start, end);
            addTrigrams(token, out);
            if (config.wordNgrams() >= 1) {
                out.add(hashKey(concat(new int[] { 'w', ':' }, token)));
            }
            if (config.wordNgrams() >= 2 && previous[0] != null) {
                out.add(hashKey(concat(new int[] { 'b', ':' }, previous[0], new int[] { ' ' }, token)));
            }
            previous[0] = token;
            return out.hasRoom();
        });
        return out.toArray();
    }

    /** A token of {@link #tokenise}: its normalised text and the UTF-16 offsets {@code [start, end)} it came from. */
    public record Token(String text, int start, int end) {}

    /**
     * Steps 2 and 3 on the whole text (no {@code max_chars} cut): Python's {@code dssm.featurise.tokenise},
     * the words the lexical analyzers start from (docs/FORMAT.md section 5). Offsets point into {@code text}
     * (see {@link UnicodeTables#normaliseAligned}).
     */
    public static List<Token> tokenise(String text) {
        UnicodeTables.Aligned aligned = UnicodeTables.normaliseAligned(text);
        String normalised = aligned.text();
        int[] codePoints = normalised.codePoints().toArray();
        int[] charIndex = new int[codePoints.length + 1];   // code point index -> UTF-16 index in normalised
        for (int i = 0; i < codePoints.length; i++) charIndex[i + 1] = charIndex[i] + Character.charCount(codePoints[i]);
        List<Token> tokens = new ArrayList<>();
        scanTokens(codePoints, (start, end) -> {
            int from = charIndex[start], to = charIndex[end];
            tokens.add(new Token(normalised.substring(from, to), aligned.sourceStart(from), aligned.sourceEnd(to)));
            return true;
        });
        return tokens;
    }

    /** Called with each token's code point range {@code [start, end)}; returns false to stop the scan. */
    @FunctionalInterface
    interface TokenVisitor {
        boolean visit(int start, int end);
    }

    /** Step 3: the maximal runs of token code points (letters, numbers, marks), in order. */
    static void scanTokens(int[] codePoints, TokenVisitor visitor) {
        int at = 0;
        while (at < codePoints.length) {
            if (!UnicodeTables.isTokenCodePoint(codePoints[at])) {
                at++;
                continue;
            }
            int end = at;
            while (end < codePoints.length && UnicodeTables.isTokenCodePoint(codePoints[end])) end++;
            if (!visitor.visit(at, end)) return;
            at = end;
        }
    }

    /** Step 1: the first {@code maxChars} code points. */
    static String cut(String text, int maxChars) {
        if (text.codePointCount(0, text.length()) <= maxChars) return text;
        return text.substring(0, text.offsetByCodePoints(0, maxChars));
    }

    /** Step 2: NFKC, then full case folding, both with Python's Unicode tables (see {@link UnicodeTables}). */
    static String normalise(String text) {
        return UnicodeTables.casefold(UnicodeTables.nfkc(text));
    }

    /** Step 4: trigrams of {@code "#" + token + "#"}, counted in code points. */
    private void addTrigrams(int[] token, IdBuffer out) {
        int[] padded = new int[token.length + 2];
        padded[0] = '#';
        System.arraycopy(token, 0, padded, 1, token.length);
        padded[padded.length - 1] = '#';
        for (int i = 0; i + 3 <= padded.length && out.hasRoom(); i++) {
            out.add(hashKey(Arrays.copyOfRange(padded, i, i + 3)));
        }
    }

    /** Step 6: {@code 1 + (fnv1a32(utf8(key)) mod buckets)}, on the unsigned hash. */
    int hashKey(int[] codePoints) {
        byte[] utf8 = new String(codePoints, 0, codePoints.length).getBytes(StandardCharsets.UTF_8);
        return 1 + (int) (Integer.toUnsignedLong(fnv1a32(utf8)) % config.buckets());
    }

    /** FNV-1a, 32 bit: {@code h = 0x811C9DC5; h = (h ^ b) * 0x01000193 mod 2^32}. */
    static int fnv1a32(byte[] bytes) {
        int hash = FNV_OFFSET;
        for (byte b : bytes) {
            hash = (hash ^ (b & 0xFF)) * FNV_PRIME;
        }
        return hash;
    }

    private static int[] concat(int[]... parts) {
        int length = 0;
        for (int[] part : parts) length += part.length;
        int[] out = new int[length];
        int at = 0;
        for (int[] part : parts) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }

    /** Growable int list with a hard cap (step 7). */
    private static final class IdBuffer {
        private final int cap;
        private int[] ids = new int[16];
        private int size;

        IdBuffer(int cap) {
            this.cap = cap;
        }

        boolean hasRoom() {
            return size < cap;
        }

        void add(int id) {
            if (size >= cap) return;
            if (size == ids.length) ids = Arrays.copyOf(ids, Math.min(cap, ids.length * 2));
            ids[size++] = id;
        }

        int[] toArray() {
            return Arrays.copyOf(ids, size);
        }
    }
}
