package org.dssmsearch.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.dssmsearch.Golden;
import org.junit.jupiter.api.Test;

/** The featuriser against hand-worked examples and the shared golden file tests/golden/featurise_cases.json. */
class FeaturiserTest {
    private static final Featuriser DEFAULT = new Featuriser(Featuriser.Config.DEFAULT);

    private static int id(String key, int buckets) {
        long hash = Integer.toUnsignedLong(Featuriser.fnv1a32(key.getBytes(StandardCharsets.UTF_8)));
        return 1 + (int) (hash % buckets);
    }

    private static int[] ids(int buckets, String... keys) {
        int[] out = new int[keys.length];
        for (int i = 0; i < keys.length; i++) out[i] = id(keys[i], buckets);
        return out;
    }

    @Test
    void fnv1aKnownValues() {
        // published FNV-1a 32-bit test vectors
        assertEquals(0x811C9DC5, Featuriser.fnv1a32(new byte[0]));
        assertEquals(0xE40C292C, Featuriser.fnv1a32("a".getBytes(StandardCharsets.UTF_8)));
        assertEquals(0xBF9CF968, Featuriser.fnv1a32("foobar".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void letterTrigramsOfGoodAndA() {
        assertArrayEquals(ids(32768, "#go", "goo", "ood", "od#"), DEFAULT.ids("good"));
        assertArrayEquals(ids(32768, "#a#"), DEFAULT.ids("a"));
        assertArrayEquals(ids(32768, "#go", "goo", "ood", "od#", "#a#"), DEFAULT.ids("Good, a!"));
    }

    @Test
    void normalisesWithNfkcThenCaseFolding() {
        assertArrayEquals(DEFAULT.ids("strasse"), DEFAULT.ids("STRAẞE"));   // ẞ -> ss (full folding)
        assertArrayEquals(DEFAULT.ids("fi"), DEFAULT.ids("ﬁ"));             // NFKC ligature
        assertArrayEquals(DEFAULT.ids("привет"), DEFAULT.ids("ПРИВЕТ"));
        assertArrayEquals(DEFAULT.ids("σς"), DEFAULT.ids("ΣΣ"));            // casefold: Σ -> σ, ς -> σ
    }

    @Test
    void separatorsAndEmptyTexts() {
        assertEquals(0, DEFAULT.ids("").length);
        assertEquals(0, DEFAULT.ids("  ... !!! \uD83D\uDE00 ").length);   // punctuation and emoji only
        assertArrayEquals(ids(32768, "#ab", "ab#", "#12", "123", "23#"), DEFAULT.ids("ab 123"));
        assertArrayEquals(ids(32768, "#日本", "日本語", "本語#"), DEFAULT.ids("日本語"));   // one CJK token
    }

    @Test
    void supplementaryCodePointsCountOnce() {
        String gothic = "\uD800\uDF30\uD800\uDF31";   // two Gothic letters (category Lo), 4 UTF-16 units
        assertArrayEquals(ids(32768, "#" + gothic, gothic + "#"), DEFAULT.ids(gothic));
    }

    @Test
    void capsAndCuts() {
        Featuriser small = new Featuriser(new Featuriser.Config(1000, 3, 2, 0));
        assertArrayEquals(ids(1000, "#ab", "ab#"), small.ids("abcdef"));        // max_chars 2 -> "ab"
        Featuriser capped = new Featuriser(new Featuriser.Config(1000, 3, 100, 0));
        assertArrayEquals(ids(1000, "#go", "goo", "ood"), capped.ids("good day"));
        for (int id : DEFAULT.ids("x".repeat(30000))) assertTrue(id >= 1 && id <= 32768);
        assertEquals(512, DEFAULT.ids("word ".repeat(10000)).length);
    }

    @Test
    void wordNgrams() {
        Featuriser unigrams = new Featuriser(new Featuriser.Config(32768, 512, 20000, 1));
        assertArrayEquals(ids(32768, "#a#", "w:a", "#b#", "w:b"), unigrams.ids("a b"));
        Featuriser bigrams = new Featuriser(new Featuriser.Config(32768, 512, 20000, 2));
        assertArrayEquals(ids(32768, "#a#", "w:a", "#b#", "w:b", "b:a b"), bigrams.ids("a b"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void equalsTheGoldenFileOnEveryCase() throws Exception {
        Object golden = Golden.readJson(Golden.require("featurise_cases.json"));
        // {"note": ..., "cases": [...]} (also accepts a bare list)
        List<Object> cases = golden instanceof Map<?, ?> map ? (List<Object>) map.get("cases") : (List<Object>) golden;
        assertTrue(cases.size() >= 1);
        List<String> failures = new ArrayList<>();
        for (Object raw : cases) {
            Map<String, Object> c = (Map<String, Object>) raw;
            Map<String, Object> config = (Map<String, Object>) c.getOrDefault("config", Map.of());
            Featuriser featuriser = new Featuriser(Featuriser.Config.fromMap(config));
            int[] expected = Json.intArray(c.get("ids"), "ids");
            String text = (String) c.get("text");
            if (!java.util.Arrays.equals(expected, featuriser.ids(text))) {
                failures.add(text.length() > 60 ? text.substring(0, 60) + "..." : text);
            }
        }
        assertEquals(List.of(), failures, "featuriser differs from Python on " + failures.size() + " of " + cases.size() + " cases");
    }
}
