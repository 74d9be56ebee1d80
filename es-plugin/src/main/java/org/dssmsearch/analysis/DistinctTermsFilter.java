package org.dssmsearch.analysis;

import java.io.IOException;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.FilteringTokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;

/**
 * Keeps the first occurrence of each term: a query's BM25 then sums over its distinct terms, as the
 * embedded index's does ({@code indexer/lexical.py Bm25Index.scores}); Lucene's match query would count a
 * repeated term ("rust bindings ... rust source") once per occurrence. Search-time only.
 */
final class DistinctTermsFilter extends FilteringTokenFilter {
    private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
    private final CharArraySet seen = new CharArraySet(16, false);

    DistinctTermsFilter(TokenStream input) {
        super(input);
    }

    @Override
    protected boolean accept() {
        if (seen.contains(term.buffer(), 0, term.length())) return false;
        seen.add(term.toString());
        return true;
    }

    @Override
    public void reset() throws IOException {
        super.reset();
        seen.clear();
    }
}
