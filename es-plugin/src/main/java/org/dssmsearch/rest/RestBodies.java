package org.dssmsearch.rest;

import java.util.Map;

import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.xcontent.XContentParser;

/** Request bodies as JSON objects; anything unparsable is a 400 that says so. */
final class RestBodies {
    private RestBodies() {}

    static Map<String, Object> parseObject(RestRequest request) {
        if (!request.hasContent()) throw new IllegalArgumentException("request body is required");
        try (XContentParser parser = request.contentParser()) {
            if (parser.nextToken() != XContentParser.Token.START_OBJECT) {
                throw new IllegalArgumentException("malformed JSON body: the request body must be a JSON object");
            }
            Map<String, Object> map = parser.map();
            if (parser.nextToken() != null) throw new IllegalArgumentException("malformed JSON body: trailing content after the object");
            return map;
        } catch (org.elasticsearch.xcontent.XContentParseException e) {
            throw new IllegalArgumentException("malformed JSON body: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalArgumentException("malformed JSON body: " + e.getMessage(), e);
        }
    }
}
