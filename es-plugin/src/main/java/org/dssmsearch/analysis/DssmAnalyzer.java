package org.dssmsearch.analysis;

import java.util.function.Supplier;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.StopFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.ru.RussianAnalyzer;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.dssmsearch.analysis.snowball.EnglishStemmer;
import org.tartarus.snowball.SnowballStemmer;
import org.tartarus.snowball.ext.RussianStemmer;

/**
 * The embedded index's BM25 analysis ({@code indexer/analysis.py}, docs/FORMAT.md section 5) as a Lucene
 * analyzer: {@link DssmTokenizer}, then the language's stop words dropped ({@link StopFilter}), then its
 * Snowball stemmer ({@link SnowballFilter}). {@code english}: "Running the fonts of libraries" gives
 * {@code run}, {@code font}, {@code librari}. Checked against tests/golden/analysis_cases.json.
 */
public final class DssmAnalyzer extends Analyzer {

    /** The analyzers the embedded index knows, by its names ({@code dssm index build --analyzer}). */
    public enum Language {
        /** Tokens only. */
        SIMPLE("simple", null, null),
        /** Lucene's English stop set (Elasticsearch's {@code _english_}), Snowball English (Porter2) of Snowball 3.1.0. */
        ENGLISH("english", EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, EnglishStemmer::new),
        /** Lucene's Russian stop set (Snowball's list), Snowball Russian (Lucene's, the same algorithm as Snowball 3.1.0). */
        RUSSIAN("russian", RussianAnalyzer.getDefaultStopSet(), RussianStemmer::new);

        private final String analyzerName;
        private final CharArraySet stopWords;
        private final Supplier<SnowballStemmer> stemmer;

        Language(String analyzerName, CharArraySet stopWords, Supplier<SnowballStemmer> stemmer) {
            this.analyzerName = analyzerName;
            this.stopWords = stopWords;
            this.stemmer = stemmer;
        }

        /** The embedded index's name: {@code simple}, {@code english}, {@code russian}. */
        public String analyzerName() {
            return analyzerName;
        }

        /** The Elasticsearch name: {@code dssm_} + the embedded name. */
        public String elasticsearchName() {
            return "dssm_" + analyzerName;
        }

        /** The Elasticsearch name of the query-side variant (each term once): {@code dssm_<name>_search}. */
        public String searchName() {
            return elasticsearchName() + "_search";
        }

        /** The stop words (empty for simple). */
        public CharArraySet stopWords() {
            return stopWords == null ? CharArraySet.EMPTY_SET : stopWords;
        }
    }

    private final Language language;
    private final boolean distinct;

    /** The analyzer of documents (and of {@code _analyze}): every term, repeats kept. */
    public DssmAnalyzer(Language language) {
        this(language, false);
    }

    /** {@code distinct}: each term once, for queries ({@code dssm_<name>_search}, see {@link DistinctTermsFilter}). */
    public DssmAnalyzer(Language language, boolean distinct) {
        this.language = language;
        this.distinct = distinct;
    }

    public Language language() {
        return language;
    }

    @Override
    protected TokenStreamComponents createComponents(String fieldName) {
        Tokenizer tokenizer = new DssmTokenizer();
        TokenStream stream = tokenizer;
        if (language.stopWords != null) stream = new StopFilter(stream, language.stopWords);
        if (language.stemmer != null) stream = new SnowballFilter(stream, language.stemmer.get());
        if (distinct) stream = new DistinctTermsFilter(stream);
        return new TokenStreamComponents(tokenizer, stream);
    }
}
