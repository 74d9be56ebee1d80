package org.dssmsearch.model;

import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.regex.Pattern;

import org.elasticsearch.ElasticsearchStatusException;
import org.elasticsearch.ExceptionsHelper;
import org.elasticsearch.ResourceAlreadyExistsException;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.admin.indices.create.CreateIndexRequest;
import org.elasticsearch.action.bulk.BulkRequest;
import org.elasticsearch.action.delete.DeleteRequest;
import org.elasticsearch.action.get.GetRequest;
import org.elasticsearch.action.get.MultiGetItemResponse;
import org.elasticsearch.action.get.MultiGetRequest;
import org.elasticsearch.action.index.IndexRequest;
import org.elasticsearch.action.search.SearchRequest;
import org.elasticsearch.action.support.WriteRequest;
import org.elasticsearch.client.internal.Client;
import org.elasticsearch.index.IndexNotFoundException;
import org.elasticsearch.index.query.QueryBuilders;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.search.builder.SearchSourceBuilder;

/**
 * The model registry: stores uploads in {@value ModelStore#INDEX} through the node's client (so every node
 * can load them and they survive restarts) and keeps decoded models in memory per node, keyed by
 * name + fingerprint (a fingerprint names its weights, so a cached entry is never stale; only the
 * name -> fingerprint binding is looked up again).
 */
public final class ModelRegistry {
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9._-]{0,99}");

    /** A model ready to use, with the name it was found under. */
    public record Loaded(String name, DssmModel model) {}

    private final int cacheSize;
    private final Map<String, Loaded> cache;                    // "name/fingerprint" -> model, LRU
    private final Map<String, Binding> bindings = new ConcurrentHashMap<>();       // name -> fingerprint
    private final Map<String, Binding> byFingerprint = new ConcurrentHashMap<>();  // fingerprint -> a name storing it

    /** A looked-up value (a name's fingerprint, or a fingerprint's name) and when it was read. */
    private record Binding(String value, long checkedNanos) {}

    public ModelRegistry(int cacheSize) {
        this.cacheSize = cacheSize;
        this.cache = new LinkedHashMap<>(16, 0.75f, true);
    }

    public static String validName(String name) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("[name] must match " + NAME.pattern() + ", got [" + name + "]");
        }
        return name;
    }

    // --- cache -------------------------------------------------------------------------------------

    private synchronized Loaded cached(String name, String fingerprint) {
        return cache.get(name + "/" + fingerprint);
    }

    private synchronized Loaded remember(String name, DssmModel model) {
        Loaded loaded = new Loaded(name, model);
        cache.put(name + "/" + model.fingerprint(), loaded);
        while (cache.size() > cacheSize) cache.remove(cache.keySet().iterator().next());
        bindings.put(name, new Binding(model.fingerprint(), System.nanoTime()));
        return loaded;
    }

    private synchronized void forget(String name) {
        cache.keySet().removeIf(key -> key.startsWith(name + "/"));
        bindings.remove(name);
        byFingerprint.clear();
    }

    // --- upload / metadata / delete -----------------------------------------------------------------

    /**
     * Stores a validated upload (its fingerprint computed from its bytes): its chunks, then the meta document,
     * then the replaced model's chunks go if unused. The chunks are written even when another name already
     * stores this fingerprint: the bytes are the same, and writing them again repairs chunks that were
     * changed in the index (loading refuses those, {@link ModelStore#decode}).
     */
    public void put(Client client, String name, ModelStore.Upload upload, ActionListener<Map<String, Object>> listener) {
        String fingerprint = upload.model().fingerprint();
        ensureIndex(client, listener.delegateFailureAndWrap((l0, ignored) -> readMeta(client, name, l0.delegateFailureAndWrap(
            (l2, previous) -> {
                BulkRequest bulk = new BulkRequest().setRefreshPolicy(WriteRequest.RefreshPolicy.IMMEDIATE);
                addChunks(bulk, fingerprint, upload.chunks());
                bulk.add(new IndexRequest(ModelStore.INDEX).id(ModelStore.metaId(name)).source(upload.meta()));
                client.bulk(bulk, l2.delegateFailureAndWrap((l3, response) -> {
                    if (response.hasFailures()) {
                        l3.onFailure(new ElasticsearchStatusException("storing model [" + name + "] failed: "
                            + response.buildFailureMessage(), RestStatus.INTERNAL_SERVER_ERROR));
                        return;
                    }
                    forget(name);
                    remember(name, upload.model());
                    Runnable answer = () -> l3.onResponse(describe(upload.meta(), previous == null ? "created" : "updated"));
                    if (previous != null && !fingerprint.equals(previous.get("fingerprint"))) {
                        deleteChunksIfUnused(client, previous, ActionListener.running(answer));
                    } else {
                        answer.run();
                    }
                }));
            }))));
    }

    private static void addChunks(BulkRequest bulk, String fingerprint, List<byte[]> chunks) {
        for (int i = 0; i < chunks.size(); i++) {
            Map<String, Object> chunk = Map.of("kind", "chunk", "fingerprint", fingerprint, "chunk", i,
                "data", Base64.getEncoder().encodeToString(chunks.get(i)));
            bulk.add(new IndexRequest(ModelStore.INDEX).id(ModelStore.chunkId(fingerprint, i)).source(chunk));
        }
    }

    /** How many stored names hold this fingerprint. */
    private static void countUsers(Client client, String fingerprint, ActionListener<Long> listener) {
        SearchRequest users = new SearchRequest(ModelStore.INDEX).source(new SearchSourceBuilder().size(0).trackTotalHits(true)
            .query(QueryBuilders.boolQuery().filter(QueryBuilders.termQuery("kind", "model")).filter(QueryBuilders.termQuery("fingerprint", fingerprint))));
        client.search(users, listener.map(response -> response.getHits().getTotalHits().value));
    }

    /** The meta document of a name (without the config's weight manifest details), or a 404. */
    public void metadata(Client client, String name, ActionListener<Map<String, Object>> listener) {
        readMeta(client, name, listener.delegateFailureAndWrap((l, meta) -> {
            if (meta == null) l.onFailure(notFound(name));
            else l.onResponse(describe(meta, null));
        }));
    }

    /** {@code {"models": [{"name", "fingerprint", "dims", ...}, ...]}} sorted by name (at most 1000). */
    public void list(Client client, ActionListener<Map<String, Object>> listener) {
        SearchRequest all = new SearchRequest(ModelStore.INDEX).source(new SearchSourceBuilder().size(1000).sort("name")
            .query(QueryBuilders.termQuery("kind", "model")));
        client.search(all, ActionListener.wrap(response -> {
            List<Map<String, Object>> models = new ArrayList<>();
            for (var hit : response.getHits().getHits()) models.add(describe(hit.getSourceAsMap(), null));
            listener.onResponse(Map.of("models", models));
        }, e -> {
            if (ExceptionsHelper.unwrapCause(e) instanceof IndexNotFoundException) listener.onResponse(Map.of("models", List.of()));
            else listener.onFailure(e);
        }));
    }

    public void delete(Client client, String name, ActionListener<Map<String, Object>> listener) {
        readMeta(client, name, listener.delegateFailureAndWrap((l, meta) -> {
            if (meta == null) {
                l.onFailure(notFound(name));
                return;
            }
            DeleteRequest delete = new DeleteRequest(ModelStore.INDEX, ModelStore.metaId(name)).setRefreshPolicy(WriteRequest.RefreshPolicy.IMMEDIATE);
            client.delete(delete, l.delegateFailureAndWrap((l2, response) -> {
                forget(name);
                deleteChunksIfUnused(client, meta, ActionListener.running(() -> l2.onResponse(Map.of("acknowledged", true, "name", name))));
            }));
        }));
    }

    static ElasticsearchStatusException notFound(String name) {
        return new ElasticsearchStatusException("model [" + name + "] not found; upload it with PUT /_dssm/model/" + name, RestStatus.NOT_FOUND);
    }

    private static Map<String, Object> describe(Map<String, Object> meta, String result) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (result != null) out.put("result", result);
        for (String key : List.of("name", "fingerprint", "dims", "chunks", "bytes", "created")) out.put(key, meta.get(key));
        @SuppressWarnings("unchecked") Map<String, Object> config = (Map<String, Object>) meta.get("config");
        for (String key : List.of("format", "format_version", "featuriser", "tower", "towers", "weights")) {
            if (config != null && config.containsKey(key)) out.put(key, config.get(key));
        }
        return out;
    }

    private void ensureIndex(Client client, ActionListener<Void> listener) {
        CreateIndexRequest create = new CreateIndexRequest(ModelStore.INDEX).settings(ModelStore.indexSettings()).mapping(ModelStore.indexMapping());
        client.admin().indices().create(create, ActionListener.wrap(r -> listener.onResponse(null), e -> {
            if (ExceptionsHelper.unwrapCause(e) instanceof ResourceAlreadyExistsException) listener.onResponse(null);
            else listener.onFailure(e);
        }));
    }

    /** The meta document's source, or null (no such name, or no registry index yet). */
    private static void readMeta(Client client, String name, ActionListener<Map<String, Object>> listener) {
        client.get(new GetRequest(ModelStore.INDEX, ModelStore.metaId(name)).realtime(true), ActionListener.wrap(
            response -> listener.onResponse(response.isExists() ? response.getSourceAsMap() : null),
            e -> {
                if (ExceptionsHelper.unwrapCause(e) instanceof IndexNotFoundException) listener.onResponse(null);
                else listener.onFailure(e);
            }));
    }

    /** Deletes a fingerprint's chunks unless another name still stores the same model. Best effort. */
    private static void deleteChunksIfUnused(Client client, Map<String, Object> meta, ActionListener<Void> listener) {
        String fingerprint = (String) meta.get("fingerprint");
        int chunks = ((Number) meta.get("chunks")).intValue();
        countUsers(client, fingerprint, ActionListener.wrap(users -> {
            if (users > 0) {
                listener.onResponse(null);
                return;
            }
            BulkRequest bulk = new BulkRequest().setRefreshPolicy(WriteRequest.RefreshPolicy.IMMEDIATE);
            for (int i = 0; i < chunks; i++) bulk.add(new DeleteRequest(ModelStore.INDEX, ModelStore.chunkId(fingerprint, i)));
            client.bulk(bulk, ActionListener.running(() -> listener.onResponse(null)));
        }, e -> listener.onResponse(null)));
    }

    // --- resolving a model for search and ingest ----------------------------------------------------

    /**
     * The model stored under a name. A node trusts its last read of the name's binding (name -> fingerprint)
     * for {@code maxAgeNanos} (search: 1 s, ingest: 5 s; 0 reads it every time); changes made through this
     * node apply at once, changes made through another node within that time.
     */
    public void byName(Client client, String name, long maxAgeNanos, Executor decodeExecutor, ActionListener<Loaded> listener) {
        Binding binding = bindings.get(name);
        if (binding != null && maxAgeNanos > 0 && System.nanoTime() - binding.checkedNanos() < maxAgeNanos) {
            Loaded loaded = cached(name, binding.value());
            if (loaded != null) {
                listener.onResponse(loaded);
                return;
            }
        }
        readMeta(client, name, listener.delegateFailureAndWrap((l, meta) -> {
            if (meta == null) {
                forget(name);
                l.onFailure(new IllegalArgumentException("[model] unknown model [" + name + "]; upload it with PUT /_dssm/model/" + name));
                return;
            }
            load(client, meta, decodeExecutor, l);
        }));
    }

    /** Some stored model with this fingerprint (the default for an index whose _meta names it). */
    public void byFingerprint(Client client, String fingerprint, long maxAgeNanos, Executor decodeExecutor, ActionListener<Loaded> listener) {
        Binding known = byFingerprint.get(fingerprint);
        if (known != null && System.nanoTime() - known.checkedNanos() < maxAgeNanos) {
            Loaded loaded = cached(known.value(), fingerprint);
            if (loaded != null) {
                listener.onResponse(loaded);
                return;
            }
        }
        ActionListener<Loaded> remembering = listener.map(loaded -> {
            byFingerprint.put(fingerprint, new Binding(loaded.name(), System.nanoTime()));
            return loaded;
        });
        SearchRequest find = new SearchRequest(ModelStore.INDEX).source(new SearchSourceBuilder().size(1)
            .query(QueryBuilders.boolQuery().filter(QueryBuilders.termQuery("kind", "model")).filter(QueryBuilders.termQuery("fingerprint", fingerprint)))
            .sort("name"));
        client.search(find, ActionListener.wrap(response -> {
            if (response.getHits().getHits().length == 0) {
                listener.onFailure(new IllegalArgumentException("[model] no uploaded model has the index's fingerprint [" + fingerprint
                    + "]; upload it with PUT /_dssm/model/{name} or pass \"model\""));
                return;
            }
            load(client, response.getHits().getHits()[0].getSourceAsMap(), decodeExecutor, remembering);
        }, e -> {
            if (ExceptionsHelper.unwrapCause(e) instanceof IndexNotFoundException) {
                listener.onFailure(new IllegalArgumentException("[model] no model uploaded yet; upload one with PUT /_dssm/model/{name}"));
            } else {
                listener.onFailure(e);
            }
        }));
    }

    private void load(Client client, Map<String, Object> meta, Executor decodeExecutor, ActionListener<Loaded> listener) {
        String name = (String) meta.get("name");
        String fingerprint = (String) meta.get("fingerprint");
        Loaded loaded = cached(name, fingerprint);
        if (loaded != null) {
            bindings.put(name, new Binding(fingerprint, System.nanoTime()));
            listener.onResponse(loaded);
            return;
        }
        int chunks = ((Number) meta.get("chunks")).intValue();
        MultiGetRequest get = new MultiGetRequest().realtime(true);
        for (int i = 0; i < chunks; i++) get.add(ModelStore.INDEX, ModelStore.chunkId(fingerprint, i));
        client.multiGet(get, listener.delegateFailureAndWrap((l, response) -> decodeExecutor.execute(() -> {
            try {
                List<byte[]> parts = new ArrayList<>();
                for (MultiGetItemResponse item : response.getResponses()) {
                    if (item.isFailed() || !item.getResponse().isExists()) {
                        throw new IllegalStateException("stored model [" + name + "] misses chunk [" + item.getId() + "]; upload it again");
                    }
                    parts.add(Base64.getDecoder().decode((String) item.getResponse().getSourceAsMap().get("data")));
                }
                l.onResponse(remember(name, ModelStore.decode(meta, parts)));
            } catch (Exception e) {
                l.onFailure(e);
            }
        })));
    }
}
