package org.dssmsearch;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.function.Supplier;

import org.apache.lucene.analysis.Analyzer;
import org.dssmsearch.analysis.DssmAnalysis;
import org.dssmsearch.ingest.DssmEmbedProcessor;
import org.dssmsearch.model.ModelRegistry;
import org.dssmsearch.rest.RestDssmModelAction;
import org.dssmsearch.rest.RestDssmSearchAction;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Setting;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.common.unit.ByteSizeValue;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.ingest.Processor;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.IngestPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;

/**
 * dssm-search in Elasticsearch: the model registry ({@code /_dssm/model/{name}}), hybrid search
 * ({@code /{index}/_dssm/search}), the {@code dssm_embed} ingest processor and the embedded index's
 * lexical analyzers ({@code dssm_simple}, {@code dssm_english}, {@code dssm_russian}, tokenizer
 * {@code dssm_tokenizer}). See es-plugin/README.md.
 */
public class DssmPlugin extends Plugin implements ActionPlugin, IngestPlugin, AnalysisPlugin {
    /**
     * Largest accepted PUT /_dssm/model body; bigger bodies get a 400. Dynamic (cluster settings API).
     * ES's own http.max_content_length (100mb) answers 413 before the plugin sees a bigger body.
     */
    public static final Setting<ByteSizeValue> MAX_UPLOAD = Setting.byteSizeSetting(
        "dssm.model.max_upload_size", ByteSizeValue.parseBytesSizeValue("80mb", "dssm.model.max_upload_size"),
        Setting.Property.NodeScope, Setting.Property.Dynamic);
    /** Decoded models kept in memory per node. */
    public static final Setting<Integer> CACHE_SIZE = Setting.intSetting("dssm.model.cache_size", 4, 1, Setting.Property.NodeScope);

    private final ModelRegistry registry;
    private final Settings settings;
    private volatile ClusterService clusterService;
    private final java.util.concurrent.atomic.AtomicLong maxUploadBytes;

    public DssmPlugin(Settings settings) {
        this.settings = settings;
        this.registry = new ModelRegistry(CACHE_SIZE.get(settings));
        this.maxUploadBytes = new java.util.concurrent.atomic.AtomicLong(MAX_UPLOAD.get(settings).getBytes());
    }

    @Override
    public List<Setting<?>> getSettings() {
        return List.of(MAX_UPLOAD, CACHE_SIZE);
    }

    @Override
    public Collection<?> createComponents(PluginServices services) {
        this.clusterService = services.clusterService();
        clusterService.getClusterSettings().addSettingsUpdateConsumer(MAX_UPLOAD, value -> maxUploadBytes.set(value.getBytes()));
        return List.of();
    }

    @Override
    public Collection<RestHandler> getRestHandlers(Settings settings, NamedWriteableRegistry namedWriteableRegistry,
                                                   RestController restController, ClusterSettings clusterSettings,
                                                   IndexScopedSettings indexScopedSettings, SettingsFilter settingsFilter,
                                                   IndexNameExpressionResolver indexNameExpressionResolver,
                                                   Supplier<DiscoveryNodes> nodesInCluster, Predicate<NodeFeature> clusterSupportsFeature) {
        return List.of(
            new RestDssmModelAction(registry, maxUploadBytes::get),
            new RestDssmSearchAction(registry, () -> clusterService, indexNameExpressionResolver));
    }

    @Override
    public Map<String, Processor.Factory> getProcessors(Processor.Parameters parameters) {
        return Map.of(DssmEmbedProcessor.TYPE, new DssmEmbedProcessor.Factory(registry, parameters.client, parameters.genericExecutor,
                                                                               parameters.ingestService::getClusterService));
    }

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return DssmAnalysis.analyzers();
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return DssmAnalysis.tokenizers();
    }
}
