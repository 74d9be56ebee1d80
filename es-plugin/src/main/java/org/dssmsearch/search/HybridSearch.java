package org.dssmsearch.search;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import java.io.IOException;
import java.io.InputStream;

import org.dssmsearch.model.ModelRegistry;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.search.MultiSearchRequest;
import org.elasticsearch.action.search.MultiSearchResponse;
import org.elasticsearch.action.search.SearchRequest;
import org.elasticsearch.action.search.SearchResponse;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.common.bytes.BytesArray;
import org.elasticsearch.common.bytes.BytesReference;
import org.elasticsearch.index.query.BoolQueryBuilder;
import org.elasticsearch.index.query.QueryBuilders;
import org.elasticsearch.search.SearchHit;
import org.elasticsearch.search.builder.SearchSourceBuilder;
import org.elasticsearch.search.vectors.KnnSearchBuilder;
import org.elasticsearch.xcontent.ToXContentFragment;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentType;

/**
 * One hybrid search: BM25 ({@code multi_match} over the text fields) and kNN (cosine on the vector field)
 * in one multi-search, each cut to {@code rank_window_size}, then {@link Fusion} and from/size paging.
 */
public final class HybridSearch {
    private HybridSearch() {}

    /** A hit's index and source, kept from whichever list saw it first (lexical, then semantic). */
    private record Source(String index, RawJson source) {}

    /** A hit's _source bytes (already without the vector field), written to the answer as they are. */
    private record RawJson(BytesReference bytes) implements ToXContentFragment {
        static RawJson copyOf(BytesReference source) {
            return source == null ? null : new RawJson(new BytesArray(BytesReference.toBytes(source)));
        }

        @Override
        public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
            try (InputStream in = bytes.streamInput()) {
                return builder.rawValue(in, XContentType.JSON);
            }
        }
    }

    public static void run(NodeClient client, String[] indices, SearchParams params, IndexModelInfo info, ModelRegistry.Loaded loaded,
                    long startNanos, ActionListener<Map<String, Object>> listener) {
        try {
            info.check(loaded.model(), loaded.name(), params.allowModelMismatch());
        } catch (IllegalArgumentException e) {
            listener.onFailure(e);
            return;
        }
        float[] vector = loaded.model().queryVector(params.query());
        if (params.rankWindowSize() == 0) {
            listener.onResponse(response(params, loaded, List.of(), Map.of(), startNanos));
            return;
        }
        MultiSearchRequest search = new MultiSearchRequest();
        List<String> fields = params.fields() != null ? params.fields() : info.lexicalFields();
        search.add(new SearchRequest(indices).source(lexicalSource(params, info, fields)));
        boolean semantic = !isZero(vector);   // cosine refuses a zero query vector; its cosine with anything is 0
        if (semantic) search.add(new SearchRequest(indices).source(semanticSource(params, info, vector)));
        client.multiSearch(search, listener.delegateFailureAndWrap((l, response) -> {
            Map<String, Source> sources = new HashMap<>();
            List<Fusion.Hit> lexical = hits(response.getResponses()[0], false, sources);
            List<Fusion.Hit> cosine = semantic ? hits(response.getResponses()[1], true, sources) : List.of();
            List<Fusion.Fused> fused = params.fusion().equals("rrf")
                ? Fusion.rrf(lexical, cosine, params.rankConstant())
                : Fusion.linear(lexical, cosine, params.alpha(), params.norm());
            l.onResponse(response(params, loaded, fused, sources, startNanos));
        }));
    }

    private static List<Fusion.Fused> page(List<Fusion.Fused> fused, SearchParams params) {
        return fused.subList(Math.min(fused.size(), params.from()), Math.min(fused.size(), params.from() + params.size()));
    }

    private static SearchSourceBuilder lexicalSource(SearchParams params, IndexModelInfo info, List<String> fields) {
        BoolQueryBuilder query = QueryBuilders.boolQuery().must(QueryBuilders.multiMatchQuery(params.query(), fields.toArray(String[]::new)));
        if (params.filter() != null) query.filter(params.filter());
        return common(params, info).query(query);
    }

    private static SearchSourceBuilder semanticSource(SearchParams params, IndexModelInfo info, float[] vector) {
        // on passages.vector, nested kNN: each document scored by its best passage
        KnnSearchBuilder knn = new KnnSearchBuilder(info.vectorField(), vector, params.rankWindowSize(), params.numCandidates(), null, null);
        if (params.filter() != null) knn.addFilterQuery(params.filter());
        return common(params, info).knnSearch(List.of(knn));
    }

    private static SearchSourceBuilder common(SearchParams params, IndexModelInfo info) {
        // each list fetches its _source (without the vectors): in parallel, no extra hop after fusion
        return new SearchSourceBuilder().size(params.rankWindowSize()).trackTotalHits(false)
            .fetchSource(null, info.sourceExcludes());
    }

    /** A list's hits; kNN cosine _score is (1 + cos) / 2, turned back into cos. A failed search fails the request. */
    private static List<Fusion.Hit> hits(MultiSearchResponse.Item item, boolean cosine, Map<String, Source> sources) throws Exception {
        if (item.isFailure()) throw item.getFailure();
        SearchResponse response = item.getResponse();
        List<Fusion.Hit> out = new ArrayList<>();
        for (SearchHit hit : response.getHits().getHits()) {
            // the double a JSON client reads: ES writes the float32 _score in its shortest decimal form
            double score = Double.parseDouble(Float.toString(hit.getScore()));
            out.add(new Fusion.Hit(hit.getId(), cosine ? 2 * score - 1 : score));
            sources.computeIfAbsent(hit.getId(), id -> new Source(hit.getIndex(), RawJson.copyOf(hit.getSourceRef())));
        }
        return out;
    }

    private static boolean isZero(float[] vector) {
        for (float v : vector) if (v != 0f) return false;
        return true;
    }

    private static Map<String, Object> response(SearchParams params, ModelRegistry.Loaded loaded, List<Fusion.Fused> fused,
                                                Map<String, Source> sources, long startNanos) {
        List<Map<String, Object>> hits = new ArrayList<>();
        for (Fusion.Fused f : page(fused, params)) {
            Map<String, Object> hit = new LinkedHashMap<>();
            Source source = sources.get(f.id());
            hit.put("_index", source.index());
            hit.put("_id", f.id());
            hit.put("_score", f.score());
            hit.put("_source", source.source());
            if (params.explain()) hit.put("_explanation", explanation(params, f));
            hits.add(hit);
        }
        Map<String, Object> fusion = new LinkedHashMap<>();
        fusion.put("method", params.fusion());
        if (params.fusion().equals("rrf")) {
            fusion.put("rank_constant", params.rankConstant());
        } else {
            fusion.put("alpha", params.alpha());
            fusion.put("norm", params.norm());
        }
        fusion.put("rank_window_size", params.rankWindowSize());
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("took", (System.nanoTime() - startNanos) / 1_000_000);
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("name", loaded.name());
        model.put("fingerprint", loaded.model().fingerprint());
        out.put("model", model);
        out.put("fusion", fusion);
        Map<String, Object> hitsSection = new LinkedHashMap<>();
        hitsSection.put("total", fused.size());
        hitsSection.put("max_score", fused.isEmpty() ? null : fused.get(0).score());
        hitsSection.put("hits", hits);
        out.put("hits", hitsSection);
        return out;
    }

    /** Python's Explanation.as_dict: per side score, rank (null when missing), normalised, weight, part. */
    private static Map<String, Object> explanation(SearchParams params, Fusion.Fused f) {
        boolean rrf = params.fusion().equals("rrf");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("fused", f.score());
        out.put("method", params.fusion());
        out.put("lexical", part(f.lexical(), rrf ? 1.0 : 1.0 - params.alpha()));
        out.put("semantic", part(f.semantic(), rrf ? 1.0 : params.alpha()));
        return out;
    }

    private static Map<String, Object> part(Fusion.Part part, double weight) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("score", part.score());
        out.put("rank", part.rank() == 0 ? null : part.rank());
        out.put("normalised", part.normalised());
        out.put("weight", weight);
        out.put("part", part.contribution());
        return out;
    }
}
