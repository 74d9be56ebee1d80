package org.dssmsearch.analysis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.OffsetAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;
import org.dssmsearch.Golden;
import org.dssmsearch.analysis.DssmAnalyzer.Language;
import org.junit.jupiter.api.Test;

/** The Lucene analyzers against the shared golden file tests/golden/analysis_cases.json (indexer/analysis.py). */
class AnalyzerTest {

    /** "term@start-end+increment" for each token. */
    private static List<String> tokens(Analyzer analyzer, String text) throws IOException {
        List<String> out = new ArrayList<>();
        try (TokenStream stream = analyzer.tokenStream("body", text)) {
            CharTermAttribute term = stream.addAttribute(CharTermAttribute.class);
            OffsetAttribute offset = stream.addAttribute(OffsetAttribute.class);
            PositionIncrementAttribute position = stream.addAttribute(PositionIncrementAttribute.class);
            stream.reset();
            while (stream.incrementToken()) {
                out.add(term + "@" + offset.startOffset() + "-" + offset.endOffset() + "+" + position.getPositionIncrement());
            }
            stream.end();
        }
        return out;
    }

    private static List<String> terms(Analyzer analyzer, String text) throws IOException {
        return tokens(analyzer, text).stream().map(token -> token.substring(0, token.lastIndexOf('@'))).toList();
    }

    private static Language language(String name) {
        for (Language language : Language.values()) if (language.analyzerName().equals(name)) return language;
        throw new IllegalArgumentException("unknown analyzer " + name + " in the golden file");
    }

    @Test
    @SuppressWarnings("unchecked")
    void equalsTheGoldenFileOnEveryCase() throws Exception {
        Map<String, Object> golden = (Map<String, Object>) Golden.readJson(Golden.require("analysis_cases.json"));
        List<Object> cases = (List<Object>) golden.get("cases");
        assertTrue(cases.size() >= 3);
        Set<String> seen = new HashSet<>();
        List<String> failures = new ArrayList<>();
        for (Object raw : cases) {
            Map<String, Object> c = (Map<String, Object>) raw;
            String name = (String) c.get("analyzer"), text = (String) c.get("text");
            seen.add(name);
            List<String> actual = terms(new DssmAnalyzer(language(name)), text);
            if (!actual.equals(c.get("terms"))) failures.add(name + " " + text + ": expected " + c.get("terms") + ", got " + actual);
        }
        assertEquals(Set.of("simple", "english", "russian"), seen);
        assertEquals(List.of(), failures, failures.size() + " of " + cases.size() + " cases differ from Python");
    }

    /** indexer/stopwords/*.txt: one word a line, '#' comments; Python's Analyzer reads them the same way. */
    private static Set<String> pythonStopWords(String file) throws IOException {
        Path path = Golden.dir().resolve("../../indexer/stopwords").resolve(file).normalize();
        Set<String> words = new HashSet<>();
        for (String line : Files.readAllLines(path, StandardCharsets.UTF_8)) {
            for (String word : line.split("#", 2)[0].trim().split("\\s+")) if (!word.isEmpty()) words.add(word);
        }
        return words;
    }

    private static Set<String> luceneStopWords(Language language) {
        Set<String> words = new HashSet<>();
        for (Object word : language.stopWords()) words.add(new String((char[]) word));
        return words;
    }

    @Test
    void stopWordsAreThePythonLists() throws IOException {
        assertEquals(pythonStopWords("english.txt"), luceneStopWords(Language.ENGLISH));
        assertEquals(pythonStopWords("russian.txt"), luceneStopWords(Language.RUSSIAN));
        assertEquals(Set.of(), luceneStopWords(Language.SIMPLE));
    }

    @Test
    void snowball3EnglishWhereLucene912Differs() throws IOException {
        // Snowball 2023-2025 changes that Lucene 9.12's EnglishStemmer (Snowball commit d8cf01dd, 2020) lacks
        Analyzer english = new DssmAnalyzer(Language.ENGLISH);
        assertEquals(List.of("organiz", "add", "paste", "universal", "geolog", "internal", "evening"),
                     terms(english, "organization added paste universal geologist internal evening"));
        assertEquals(List.of("елк", "ежик"), terms(new DssmAnalyzer(Language.RUSSIAN), "Ёлка ёжики"));   // ё -> е inside the stemmer
    }

    @Test
    void offsetsPointIntoTheOriginalText() throws IOException {
        Analyzer simple = new DssmAnalyzer(Language.SIMPLE);
        assertEquals(List.of("strasse@0-6+1", "café@7-11+1", "fine@13-16+1"), tokens(simple, "Straße Café, ﬁne"));
        assertEquals(List.of("école@0-6+1", "x2@7-9+1"), tokens(simple, "E\u0301cole x²"));       // combining accent, superscript
        assertEquals(List.of("c@0-1+1", "debian@5-11+1"), tokens(simple, "C++ (Debian)"));
        // halfwidth ｶ + voiced mark compose into one code point (ガ): offsets cover the whole token
        assertEquals(List.of("ガ@0-2+1"), tokens(simple, "ｶﾞ"));
        assertEquals(List.of("\uD800\uDF30\uD800\uDF31@1-5+1"), tokens(simple, " \uD800\uDF30\uD800\uDF31"));   // Gothic: 2 code points, 4 units
    }

    @Test
    void immenseTokensAreLeftOutAndTheirPositionsKept() throws IOException {
        String immense = "x".repeat(32767);   // one byte over Lucene's term limit
        assertEquals(List.of("a@0-1+1", "b@32770-32771+2"), tokens(new DssmAnalyzer(Language.SIMPLE), "a " + immense + " b"));
    }

    @Test
    void searchVariantKeepsEachTermOnce() throws IOException {
        String text = "Rust bindings - Rust source, fonts and font";
        assertEquals(List.of("rust", "bind", "rust", "sourc", "font", "font"), terms(new DssmAnalyzer(Language.ENGLISH), text));
        Analyzer search = new DssmAnalyzer(Language.ENGLISH, true);
        assertEquals(List.of("rust", "bind", "sourc", "font"), terms(search, text));
        assertEquals(List.of("rust", "bind", "sourc", "font"), terms(search, text));   // reset clears what was seen
    }

    @Test
    void analyzersAreReusable() throws IOException {
        Analyzer english = new DssmAnalyzer(Language.ENGLISH);
        assertEquals(List.of("run", "font", "librari"), terms(english, "Running the fonts of libraries"));
        assertEquals(List.of("run", "font", "librari"), terms(english, "Running the fonts of libraries"));
        assertEquals(List.of(), terms(english, "the of and"));
        assertEquals(List.of(), terms(english, ""));
    }
}
