package org.dssmsearch.model;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Python's Unicode facts for the featuriser, from tables written by es-plugin/scripts/gen_casefold.py:
 * case folding, the tokeniser class {@code [\p{L}\p{N}\p{M}]} of the {@code regex} module, and the code
 * points Python's unicodedata does not know. The JDK's own Unicode version never decides a feature id.
 */
final class UnicodeTables {
    private static final Map<Integer, int[]> CASE_FOLDING = loadCaseFolding();
    private static final BitSet TOKEN = loadRanges("token_ranges.txt");
    private static final BitSet UNASSIGNED = loadRanges("unassigned_ranges.txt");

    private UnicodeTables() {}

    /** True when the code point belongs to a token (letter, number or mark for Python's {@code regex}). */
    static boolean isTokenCodePoint(int codePoint) {
        return TOKEN.get(codePoint);
    }

    /**
     * NFKC as Python computes it: code points unknown to Python's unicodedata are starters without
     * decomposition there, so they pass unchanged and the JDK normalises only the runs between them.
     */
    static String nfkc(String text) {
        StringBuilder out = new StringBuilder(text.length());
        int runStart = 0;
        int i = 0;
        while (i < text.length()) {
            int codePoint = text.codePointAt(i);
            int next = i + Character.charCount(codePoint);
            if (UNASSIGNED.get(codePoint)) {
                out.append(Normalizer.normalize(text.substring(runStart, i), Normalizer.Form.NFKC));
                out.appendCodePoint(codePoint);
                runStart = next;
            }
            i = next;
        }
        out.append(Normalizer.normalize(text.substring(runStart), Normalizer.Form.NFKC));
        return out.toString();
    }

    /** Python's {@code str.casefold()}, code point by code point. */
    static String casefold(String text) {
        StringBuilder folded = new StringBuilder(text.length());
        text.codePoints().forEach(codePoint -> {
            int[] replacement = CASE_FOLDING.get(codePoint);
            if (replacement == null) {
                folded.appendCodePoint(codePoint);
            } else {
                for (int c : replacement) folded.appendCodePoint(c);
            }
        });
        return folded.toString();
    }

    /**
     * {@code casefold(nfkc(text))} with, for each of its UTF-16 units, the range {@code [start, end)} of
     * {@code text} it came from (for token offsets: highlighting). The text is always the exact
     * normalisation of the whole input; the ranges come from normalising segments (a starter and the
     * marks and conjoining jamo after it) one by one, and are used only when those pieces join up to the
     * same text (else the ranges are spread proportionally over the input).
     */
    static Aligned normaliseAligned(String text) {
        String exact = casefold(nfkc(text));
        int n = text.length();
        if (exact.length() == n && isAscii(text)) return new Aligned(exact, null, null, n);
        StringBuilder pieces = new StringBuilder(exact.length());
        int[] starts = new int[exact.length()];
        int[] ends = new int[exact.length()];
        int start = 0;
        while (start < n) {
            int end = start + Character.charCount(text.codePointAt(start));
            while (end < n && joinsPrevious(text.codePointAt(end))) end += Character.charCount(text.codePointAt(end));
            String piece = end - start == 1 && text.charAt(start) < 0x80
                ? String.valueOf(Character.toLowerCase(text.charAt(start)))
                : casefold(nfkc(text.substring(start, end)));
            if (pieces.length() + piece.length() > exact.length()) return new Aligned(exact, null, null, n);
            for (int i = 0; i < piece.length(); i++) {
                starts[pieces.length() + i] = start;
                ends[pieces.length() + i] = end;
            }
            pieces.append(piece);
            start = end;
        }
        return exact.contentEquals(pieces) ? new Aligned(exact, starts, ends, n) : new Aligned(exact, null, null, n);
    }

    /** The normalised text; {@code starts}/{@code ends} null: offsets proportional (identity for ASCII). */
    record Aligned(String text, int[] starts, int[] ends, int sourceLength) {
        /** Where the unit at {@code index} of the normalised text starts in the source. */
        int sourceStart(int index) {
            if (starts != null) return index < starts.length ? starts[index] : sourceLength;
            return (int) ((long) index * sourceLength / Math.max(1, text.length()));
        }

        /** Where the units before {@code endIndex} (exclusive) end in the source. */
        int sourceEnd(int endIndex) {
            if (ends != null) return endIndex > 0 ? ends[endIndex - 1] : 0;
            return (int) Math.min(sourceLength, ((long) endIndex * sourceLength + text.length() - 1) / Math.max(1, text.length()));
        }
    }

    private static boolean isAscii(String text) {
        for (int i = 0; i < text.length(); i++) if (text.charAt(i) >= 0x80) return false;
        return true;
    }

    /** Code points that NFKC may compose with what precedes them: marks, conjoining jamo, halfwidth (semi-)voiced marks. */
    private static boolean joinsPrevious(int codePoint) {
        int type = Character.getType(codePoint);
        return type == Character.NON_SPACING_MARK || type == Character.ENCLOSING_MARK || type == Character.COMBINING_SPACING_MARK
            || (codePoint >= 0x1160 && codePoint <= 0x11FF) || (codePoint >= 0xD7B0 && codePoint <= 0xD7FF)
            || codePoint == 0xFF9E || codePoint == 0xFF9F;
    }

    private static Map<Integer, int[]> loadCaseFolding() {
        Map<Integer, int[]> table = new HashMap<>();
        readLines("casefold.tsv", line -> {
            String[] columns = line.split("\t");
            int[] folded = Arrays.stream(columns[1].split(" ")).mapToInt(hex -> Integer.parseInt(hex, 16)).toArray();
            table.put(Integer.parseInt(columns[0], 16), folded);
        });
        return Map.copyOf(table);
    }

    private static BitSet loadRanges(String resource) {
        BitSet set = new BitSet(Character.MAX_CODE_POINT + 1);
        readLines(resource, line -> {
            String[] bounds = line.split(" ");
            set.set(Integer.parseInt(bounds[0], 16), Integer.parseInt(bounds[1], 16) + 1);
        });
        return set;
    }

    private static void readLines(String resource, Consumer<String> consumer) {
        try (InputStream in = UnicodeTables.class.getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException(resource + " missing from the plugin jar (es-plugin/scripts/gen_casefold.py)");
            BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                if (!line.isEmpty() && !line.startsWith("#")) consumer.accept(line);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
