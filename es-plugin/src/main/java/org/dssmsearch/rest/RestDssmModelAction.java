package org.dssmsearch.rest;

import static org.elasticsearch.rest.RestRequest.Method.DELETE;
import static org.elasticsearch.rest.RestRequest.Method.GET;
import static org.elasticsearch.rest.RestRequest.Method.PUT;

import java.io.IOException;
import java.util.List;
import java.util.Map;

import org.dssmsearch.DssmPlugin;
import org.dssmsearch.model.ModelRegistry;
import org.dssmsearch.model.ModelStore;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

/**
 * The model registry: {@code PUT|GET|DELETE /_dssm/model/{name}}, and {@code GET /_dssm/model} listing
 * every stored model. PUT takes
 * {@code {"config": <config.json>, "weights": {"<manifest name>": "<base64 of the .f32 bytes>"}}}.
 */
public final class RestDssmModelAction extends BaseRestHandler {
    private final ModelRegistry registry;
    private final java.util.function.LongSupplier maxUploadBytes;

    public RestDssmModelAction(ModelRegistry registry, java.util.function.LongSupplier maxUploadBytes) {
        this.registry = registry;
        this.maxUploadBytes = maxUploadBytes;
    }

    @Override
    public String getName() {
        return "dssm_model";
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(GET, "/_dssm/model"), new Route(PUT, "/_dssm/model/{name}"), new Route(GET, "/_dssm/model/{name}"),
            new Route(DELETE, "/_dssm/model/{name}"));
    }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) throws IOException {
        if (request.param("name") == null) return channel -> registry.list(client, listener(channel, RestStatus.OK));
        String name = ModelRegistry.validName(request.param("name"));
        return switch (request.method()) {
            case GET -> channel -> registry.metadata(client, name, listener(channel, RestStatus.OK));
            case DELETE -> channel -> registry.delete(client, name, listener(channel, RestStatus.OK));
            default -> preparePut(request, client, name);
        };
    }

    private RestChannelConsumer preparePut(RestRequest request, NodeClient client, String name) {
        if (!request.hasContent()) throw new IllegalArgumentException("request body is required: {\"config\": {...}, \"weights\": {...}}");
        long limit = maxUploadBytes.getAsLong();
        if (request.contentLength() > limit) {
            throw new IllegalArgumentException("model body of " + request.contentLength() + " bytes exceeds the limit of " + limit
                + " bytes (node setting " + DssmPlugin.MAX_UPLOAD.getKey() + ")");
        }
        Map<String, Object> body = RestBodies.parseObject(request);
        return channel -> client.threadPool().generic().execute(() -> {
            ModelStore.Upload upload;
            try {
                upload = ModelStore.parseUpload(name, body);
            } catch (Exception e) {
                sendError(channel, e);
                return;
            }
            registry.put(client, name, upload, listener(channel, RestStatus.OK));
        });
    }

    static ActionListener<Map<String, Object>> listener(RestChannel channel, RestStatus status) {
        return ActionListener.wrap(map -> {
            XContentBuilder builder = channel.newBuilder();
            builder.map(map);
            channel.sendResponse(new RestResponse(status, builder));
        }, e -> sendError(channel, e));
    }

    static void sendError(RestChannel channel, Exception e) {
        try {
            channel.sendResponse(new RestResponse(channel, e));
        } catch (IOException io) {
            e.addSuppressed(io);
            channel.sendResponse(new RestResponse(RestStatus.INTERNAL_SERVER_ERROR, RestResponse.TEXT_CONTENT_TYPE,
                org.elasticsearch.common.bytes.BytesArray.EMPTY));
        }
    }
}
