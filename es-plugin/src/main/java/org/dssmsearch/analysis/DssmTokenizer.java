package org.dssmsearch.analysis;

import java.io.IOException;
import java.io.Reader;
import java.util.List;

import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.OffsetAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.util.UnicodeUtil;
import org.dssmsearch.model.Featuriser;

/**
 * The featuriser's words as Lucene tokens: NFKC, full case folding, maximal runs of letters, numbers and
 * marks ({@link Featuriser#tokenise}, Python's {@code dssm.featurise.tokenise}; docs/FORMAT.md section 5).
 * {@code "C++ and Straße"} gives {@code c}, {@code and}, {@code strasse}.
 *
 * <p>The whole field value is read, then cut. A token longer than Lucene's term limit (32,766 UTF-8
 * bytes), which would make the document fail, is left out (its position counts); the embedded index
 * keeps it, the only difference from Python.
 */
public final class DssmTokenizer extends Tokenizer {
    private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
    private final OffsetAttribute offset = addAttribute(OffsetAttribute.class);
    private final PositionIncrementAttribute position = addAttribute(PositionIncrementAttribute.class);
    private List<Featuriser.Token> tokens;
    private int next;
    private int finalOffset;

    @Override
    public boolean incrementToken() throws IOException {
        if (tokens == null) {
            String text = readAll(input);
            tokens = Featuriser.tokenise(text);
            finalOffset = correctOffset(text.length());
        }
        int skipped = 0;
        while (next < tokens.size()) {
            Featuriser.Token token = tokens.get(next++);
            if (UnicodeUtil.calcUTF16toUTF8Length(token.text(), 0, token.text().length()) > IndexWriter.MAX_TERM_LENGTH) {
                skipped++;
                continue;
            }
            clearAttributes();
            term.append(token.text());
            offset.setOffset(correctOffset(token.start()), correctOffset(token.end()));
            position.setPositionIncrement(1 + skipped);
            return true;
        }
        return false;
    }

    @Override
    public void end() throws IOException {
        super.end();
        offset.setOffset(finalOffset, finalOffset);
    }

    @Override
    public void reset() throws IOException {
        super.reset();
        tokens = null;
        next = 0;
        finalOffset = 0;
    }

    private static String readAll(Reader reader) throws IOException {
        StringBuilder text = new StringBuilder();
        char[] buffer = new char[8192];
        for (int read = reader.read(buffer); read != -1; read = reader.read(buffer)) text.append(buffer, 0, read);
        return text.toString();
    }
}
