package org.dssmsearch.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;

import org.dssmsearch.search.Fusion.Fused;
import org.dssmsearch.search.Fusion.Hit;
import org.junit.jupiter.api.Test;

/** Fusion formulas with numbers a reader can recompute (docs/FORMAT.md section 3). */
class FusionTest {
    private static final double EPS = 1e-12;
    // lexical: a=10, b=6, c=2 ; semantic: b=0.9, d=0.5, a=0.1
    private static final List<Hit> LEX = List.of(new Hit("a", 10), new Hit("b", 6), new Hit("c", 2));
    private static final List<Hit> SEM = List.of(new Hit("b", 0.9), new Hit("d", 0.5), new Hit("a", 0.1));

    @Test
    void rrfSumsReciprocalRanks() {
        List<Fused> fused = Fusion.rrf(LEX, SEM, 60);
        assertEquals(List.of("b", "a", "d", "c"), fused.stream().map(Fused::id).toList());
        assertEquals(1.0 / (60 + 2) + 1.0 / (60 + 1), fused.get(0).score(), EPS); // b: lexical rank 2, semantic rank 1
        assertEquals(1.0 / (60 + 1) + 1.0 / (60 + 3), fused.get(1).score(), EPS); // a
        assertEquals(1.0 / (60 + 2), fused.get(2).score(), EPS);                  // d: missing lexically adds nothing
        assertEquals(1.0 / (60 + 3), fused.get(3).score(), EPS);                  // c
        assertEquals(0, fused.get(2).lexical().rank());
    }

    @Test
    void linearMinmaxWithMissingAsZero() {
        List<Fused> fused = Fusion.linear(LEX, SEM, 0.5, "minmax");
        // lexical minmax: a=(10-2)/8=1, b=(6-2)/8=0.5, c=0 ; semantic: b=1, d=(0.5-0.1)/0.8=0.5, a=0
        assertEquals(List.of("b", "a", "d", "c"), fused.stream().map(Fused::id).toList());
        assertEquals(0.5 * 1 + 0.5 * 0.5, fused.get(0).score(), EPS);
        assertEquals(0.5 * 0 + 0.5 * 1, fused.get(1).score(), EPS);
        assertEquals(0.5 * 0.5 + 0.5 * 0, fused.get(2).score(), EPS);
        assertEquals(0.0, fused.get(3).score(), EPS);
    }

    @Test
    void linearAlphaWeightsTheSemanticSide() {
        List<Fused> fused = Fusion.linear(LEX, SEM, 0.8, "minmax");
        // b = 0.8*1 + 0.2*0.5 = 0.9 ; a = 0.8*0 + 0.2*1 = 0.2 ; d = 0.8*0.5 = 0.4 ; c = 0
        assertEquals(List.of("b", "d", "a", "c"), fused.stream().map(Fused::id).toList());
        assertEquals(0.9, fused.get(0).score(), EPS);
        assertEquals(0.4, fused.get(1).score(), EPS);
        assertEquals(0.2, fused.get(2).score(), 1e-9);
    }

    @Test
    void zscoreUsesPopulationStdAndListMinimumForMissing() {
        // lexical 10, 6, 2: mean 6, population std sqrt(32/3)
        double std = Math.sqrt(32.0 / 3);
        double[] z = Fusion.zscore(new double[] { 10, 6, 2 });
        assertEquals(4 / std, z[0], EPS);
        assertEquals(0.0, z[1], EPS);
        assertEquals(-4 / std, z[2], EPS);
        List<Fused> fused = Fusion.linear(LEX, SEM, 0.5, "zscore");
        Fused d = fused.stream().filter(f -> f.id().equals("d")).findFirst().orElseThrow();
        // d is missing lexically: it gets the lexical list's minimum, -4/std ; semantic 0.9,0.5,0.1 -> d's z = 0
        assertEquals(0.5 * 0.0 + 0.5 * (-4 / std), d.score(), EPS);
    }

    @Test
    void constantScoresAndSingleHits() {
        assertEquals(1.0, Fusion.minmax(new double[] { 3.0 })[0]);
        assertEquals(1.0, Fusion.minmax(new double[] { 2.0, 2.0 })[1]);
        assertEquals(0.0, Fusion.zscore(new double[] { 2.0, 2.0 })[0]);
        List<Fused> fused = Fusion.linear(List.of(new Hit("x", 5)), List.of(), 0.5, "zscore");
        assertEquals(0.0, fused.get(0).score(), EPS); // zscore of one hit is 0; empty semantic list -> missing 0.0
    }

    @Test
    void tiesBreakByIdAscendingInCodePointOrder() {
        List<Fused> fused = Fusion.rrf(List.of(new Hit("b", 1), new Hit("a", 1)), List.of(), 60);
        // the lexical list is re-sorted: a (rank 1) before b (rank 2) on equal scores
        assertEquals("a", fused.get(0).id());
        assertEquals(1.0 / 61, fused.get(0).score(), EPS);
        List<Fused> tie = Fusion.rrf(List.of(new Hit("z", 1)), List.of(new Hit("y", 1)), 60);
        assertEquals(List.of("y", "z"), tie.stream().map(Fused::id).toList());
        // U+FF5A (BMP) sorts before U+1F600 (supplementary) in Python; UTF-16 order would say otherwise
        assertEquals(-1, Integer.signum(Fusion.ID_ORDER.compare("\uFF5A", "\uD83D\uDE00")));
    }

    @Test
    void badParametersAreIllegalArguments() {
        assertThrows(IllegalArgumentException.class, () -> Fusion.linear(LEX, SEM, 1.5, "minmax"));
        assertThrows(IllegalArgumentException.class, () -> Fusion.linear(LEX, SEM, 0.5, "l2"));
        assertThrows(IllegalArgumentException.class, () -> Fusion.rrf(LEX, SEM, 0));
    }
}
