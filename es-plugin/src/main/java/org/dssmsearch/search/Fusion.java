package org.dssmsearch.search;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.dssmsearch.model.Json;

/**
 * Fusion of a lexical (BM25) and a semantic (cosine) hit list, exactly as {@code indexer/fusion.py}
 * (docs/FORMAT.md section 3): normalise, then combine; ties by id ascending (code point order).
 */
public final class Fusion {
    public static final Set<String> METHODS = Set.of("rrf", "linear");
    public static final Set<String> NORMS = Set.of("minmax", "zscore");

    private Fusion() {}

    /** One retriever hit. */
    public record Hit(String id, double score) {}

    /** One list's part of a fused hit: rank is 1-based, 0 when the document is missing from that list. */
    public record Part(Double score, int rank, double normalised, double contribution) {}

    /** A fused hit with both parts, for explain. */
    public record Fused(String id, double score, Part lexical, Part semantic) {}

    /** Python's string order: by code point (Java's compareTo orders UTF-16 units). */
    public static final Comparator<String> ID_ORDER = Json.CODE_POINT_ORDER;

    private static final Comparator<Hit> HIT_ORDER =
        Comparator.comparingDouble((Hit h) -> -h.score()).thenComparing(Hit::id, ID_ORDER);

    /** A retriever list in the contract's order: score descending, ties by id ascending. */
    public static List<Hit> sorted(List<Hit> hits) {
        List<Hit> out = new ArrayList<>(hits);
        out.sort(HIT_ORDER);
        return out;
    }

    /** minmax: (s - min) / (max - min); every hit 1.0 when max == min. */
    public static double[] minmax(double[] scores) {
        double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
        for (double s : scores) {
            min = Math.min(min, s);
            max = Math.max(max, s);
        }
        double[] out = new double[scores.length];
        for (int i = 0; i < scores.length; i++) out[i] = max == min ? 1.0 : (scores[i] - min) / (max - min);
        return out;
    }

    /** zscore: (s - mean) / std with the population std; every hit 0.0 when std == 0. */
    public static double[] zscore(double[] scores) {
        double[] out = new double[scores.length];
        if (scores.length == 0) return out;
        double mean = 0;
        for (double s : scores) mean += s;
        mean /= scores.length;
        double variance = 0;
        for (double s : scores) variance += (s - mean) * (s - mean);
        double std = Math.sqrt(variance / scores.length);
        for (int i = 0; i < scores.length; i++) out[i] = std == 0 ? 0.0 : (scores[i] - mean) / std;
        return out;
    }

    /** The normalised score of a document missing from a list: 0.0 (minmax) or the list's minimum (zscore). */
    static double missingValue(String norm, double[] normalised) {
        if (!norm.equals("zscore") || normalised.length == 0) return 0.0;
        double min = Double.POSITIVE_INFINITY;
        for (double n : normalised) min = Math.min(min, n);
        return min;
    }

    /** linear: alpha * n_semantic + (1 - alpha) * n_lexical, over the union of both lists. */
    public static List<Fused> linear(List<Hit> lexical, List<Hit> semantic, double alpha, String norm) {
        if (!(alpha >= 0 && alpha <= 1)) throw new IllegalArgumentException("[alpha] must be in [0, 1], got [" + alpha + "]");
        if (!NORMS.contains(norm)) throw new IllegalArgumentException("[norm] unknown [" + norm + "]; choose from " + NORMS);
        Map<String, Part> lex = parts(sorted(lexical), norm, 1 - alpha);
        Map<String, Part> sem = parts(sorted(semantic), norm, alpha);
        Part lexMissing = new Part(null, 0, missingValue(norm, normalisedOf(lex)), (1 - alpha) * missingValue(norm, normalisedOf(lex)));
        Part semMissing = new Part(null, 0, missingValue(norm, normalisedOf(sem)), alpha * missingValue(norm, normalisedOf(sem)));
        return combine(lex, sem, lexMissing, semMissing);
    }

    /** rrf (Cormack et al. 2009): sum over lists of 1 / (rank_constant + rank); a missing document adds nothing. */
    public static List<Fused> rrf(List<Hit> lexical, List<Hit> semantic, int rankConstant) {
        if (rankConstant < 1) throw new IllegalArgumentException("[rank_constant] must be >= 1, got [" + rankConstant + "]");
        Map<String, Part> lex = rrfParts(sorted(lexical), rankConstant);
        Map<String, Part> sem = rrfParts(sorted(semantic), rankConstant);
        Part missing = new Part(null, 0, 0.0, 0.0);
        return combine(lex, sem, missing, missing);
    }

    private static Map<String, Part> parts(List<Hit> hits, String norm, double weight) {
        double[] scores = hits.stream().mapToDouble(Hit::score).toArray();
        double[] normalised = norm.equals("zscore") ? zscore(scores) : minmax(scores);
        Map<String, Part> out = new LinkedHashMap<>();
        for (int i = 0; i < hits.size(); i++) {
            out.put(hits.get(i).id(), new Part(hits.get(i).score(), i + 1, normalised[i], weight * normalised[i]));
        }
        return out;
    }

    private static double[] normalisedOf(Map<String, Part> parts) {
        return parts.values().stream().mapToDouble(Part::normalised).toArray();
    }

    private static Map<String, Part> rrfParts(List<Hit> hits, int rankConstant) {
        Map<String, Part> out = new LinkedHashMap<>();
        for (int i = 0; i < hits.size(); i++) {
            double contribution = 1.0 / (rankConstant + i + 1);
            out.put(hits.get(i).id(), new Part(hits.get(i).score(), i + 1, contribution, contribution));
        }
        return out;
    }

    private static List<Fused> combine(Map<String, Part> lex, Map<String, Part> sem, Part lexMissing, Part semMissing) {
        Map<String, Fused> union = new HashMap<>();
        for (String id : concatKeys(lex, sem)) {
            Part l = lex.getOrDefault(id, lexMissing);
            Part s = sem.getOrDefault(id, semMissing);
            union.put(id, new Fused(id, l.contribution() + s.contribution(), l, s));
        }
        List<Fused> out = new ArrayList<>(union.values());
        out.sort(Comparator.comparingDouble((Fused f) -> -f.score()).thenComparing(Fused::id, ID_ORDER));
        return out;
    }

    private static List<String> concatKeys(Map<String, Part> a, Map<String, Part> b) {
        List<String> keys = new ArrayList<>(a.keySet());
        for (String key : b.keySet()) if (!a.containsKey(key)) keys.add(key);
        return keys;
    }
}
