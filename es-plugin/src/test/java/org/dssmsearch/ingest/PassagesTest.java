package org.dssmsearch.ingest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.dssmsearch.Golden;
import org.junit.jupiter.api.Test;

/** Passage windows against hand-worked examples and tests/golden/passage_cases.json (indexer/passages.py). */
class PassagesTest {
    @Test
    void windowsAfterTheTitleTheLastEndingTheText() {
        String text = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9";
        assertEquals(List.of("T w0 w1 w2 w3", "T w2 w3 w4 w5", "T w4 w5 w6 w7", "T w6 w7 w8 w9"),
                     Passages.parse("4:2").texts("T", text));
        assertEquals(List.of("T w0 w1 w2 w3", "T w2 w3 w4 w5"), Passages.parse("4:2:2").texts("T", text));
        assertEquals(List.of("w0 w1 w2 w3", "w3 w4 w5 w6", "w5 w6 w7 w8"), Passages.parse("4:3").texts("", "w0 w1 w2 w3 w4 w5 w6 w7 w8"));
        assertEquals(List.of(), Passages.parse("4:2").texts("T", "short text"));
    }

    @Test
    void badSpecsNameTheForm() {
        for (String spec : List.of("12", "a:b", "0:0", "6:12", "12:0", "12:6:0", "12:6:2:1", "12:6:x")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Passages.parse(spec), spec);
            assertTrue(e.getMessage().contains("W:S or W:S:N"), e.getMessage());
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void goldenCasesEqualPython() throws Exception {
        Map<String, Object> golden = (Map<String, Object>) Golden.readJson(Golden.require("passage_cases.json"));
        List<Object> cases = (List<Object>) golden.get("cases");
        assertTrue(cases.size() >= 100);
        for (Object item : cases) {
            Map<String, Object> c = (Map<String, Object>) item;
            String title = (String) c.get("title"), text = (String) c.get("text"), spec = (String) c.get("passages");
            assertEquals(c.get("expected"), Passages.parse(spec).texts(title, text), spec + " " + text);
        }
    }
}
