package org.dssmsearch.analysis;

import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;

/**
 * What the plugin registers through {@code AnalysisPlugin}: the analyzers {@code dssm_simple},
 * {@code dssm_english}, {@code dssm_russian} (usable by name in a mapping, no index settings needed), their
 * query-side variants {@code dssm_<name>_search} (the same terms, each once: the mapping's
 * {@code search_analyzer}) and the tokenizer {@code dssm_tokenizer} (for custom analyzers built on the
 * featuriser's words).
 */
public final class DssmAnalysis {
    public static final String TOKENIZER = "dssm_tokenizer";

    private DssmAnalysis() {}

    public static Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> analyzers() {
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> analyzers = new LinkedHashMap<>();
        for (DssmAnalyzer.Language language : DssmAnalyzer.Language.values()) {
            analyzers.put(language.elasticsearchName(),
                          (indexSettings, environment, name, settings) -> new Provider(name, settings, new DssmAnalyzer(language)));
            analyzers.put(language.searchName(),
                          (indexSettings, environment, name, settings) -> new Provider(name, settings, new DssmAnalyzer(language, true)));
        }
        return analyzers;
    }

    public static Map<String, AnalysisProvider<TokenizerFactory>> tokenizers() {
        return Map.of(TOKENIZER, (indexSettings, environment, name, settings) -> TokenizerFactory.newFactory(name, DssmTokenizer::new));
    }

    /** One analyzer instance per index (Lucene analyzers are thread-safe; components are per thread). */
    static final class Provider extends AbstractIndexAnalyzerProvider<DssmAnalyzer> {
        private final DssmAnalyzer analyzer;

        Provider(String name, Settings settings, DssmAnalyzer analyzer) {
            super(name, settings);
            this.analyzer = analyzer;
        }

        @Override
        public DssmAnalyzer get() {
            return analyzer;
        }
    }
}
