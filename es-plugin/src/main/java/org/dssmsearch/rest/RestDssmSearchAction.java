package org.dssmsearch.rest;

import static org.elasticsearch.rest.RestRequest.Method.GET;
import static org.elasticsearch.rest.RestRequest.Method.POST;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import org.dssmsearch.model.ModelRegistry;
import org.dssmsearch.search.HybridSearch;
import org.dssmsearch.search.IndexModelInfo;
import org.dssmsearch.search.SearchParams;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.support.IndicesOptions;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.Strings;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestRequest;

/**
 * {@code POST /{index}/_dssm/search}: embeds the query in Java, runs BM25 and kNN in one multi-search and
 * fuses them as indexer/fusion.py does. The body is documented in es-plugin/README.md.
 */
public final class RestDssmSearchAction extends BaseRestHandler {
    /** How long a node trusts its last lookup of which model a name (or a fingerprint) means. */
    static final long MODEL_BINDING_MAX_AGE_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(1);
    private final ModelRegistry registry;
    private final Supplier<ClusterService> clusterService;
    private final IndexNameExpressionResolver resolver;

    public RestDssmSearchAction(ModelRegistry registry, Supplier<ClusterService> clusterService, IndexNameExpressionResolver resolver) {
        this.registry = registry;
        this.clusterService = clusterService;
        this.resolver = resolver;
    }

    @Override
    public String getName() {
        return "dssm_search";
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(POST, "/{index}/_dssm/search"), new Route(GET, "/{index}/_dssm/search"));
    }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) throws IOException {
        String[] indices = Strings.splitStringByCommaToArray(request.param("index"));
        Map<String, Object> body = RestBodies.parseObject(request);
        SearchParams params = SearchParams.parse(body, request.contentParserConfig());
        ClusterState state = clusterService.get().state();
        String[] concrete = resolver.concreteIndexNames(state, IndicesOptions.strictExpandOpen(), indices);
        IndexModelInfo info = IndexModelInfo.read(state.metadata(), concrete, params.vectorField());
        String modelName = params.model() == null ? null : validModelParam(params.model());
        return channel -> {
            long start = System.nanoTime();
            ActionListener<ModelRegistry.Loaded> onModel = ActionListener.wrap(
                loaded -> HybridSearch.run(client, indices, params, info, loaded, start,
                    RestDssmModelAction.listener(channel, org.elasticsearch.rest.RestStatus.OK)),
                e -> RestDssmModelAction.sendError(channel, e));
            var executor = client.threadPool().generic();
            if (modelName != null) {
                registry.byName(client, modelName, MODEL_BINDING_MAX_AGE_NANOS, executor, onModel);
            } else if (info.fingerprint() != null) {
                registry.byFingerprint(client, info.fingerprint(), MODEL_BINDING_MAX_AGE_NANOS, executor, onModel);
            } else {
                RestDssmModelAction.sendError(channel, new IllegalArgumentException(
                    "[model] is required: the index mapping has no _meta." + IndexModelInfo.FINGERPRINT_KEY + " to choose a default"));
            }
        };
    }

    /** A request's model name: a bad name is an unknown model (400 naming [model]). */
    static String validModelParam(String name) {
        try {
            return ModelRegistry.validName(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("[model] unknown model [" + name + "]: " + e.getMessage());
        }
    }
}
