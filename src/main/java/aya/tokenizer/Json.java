package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.regex.Pattern;

/** Small helpers that read tokenizer.json nodes and fail with a message naming the missing piece. */
final class Json {
    private Json() {
    }

    static String type(JsonNode node, String what) {
        JsonNode t = node.get("type");
        if (t == null || !t.isTextual()) throw new AyaException(what + " has no \"type\" field: " + abbreviate(node));
        return t.asText();
    }

    static String string(JsonNode node, String field) {
        JsonNode v = node.get(field);
        if (v == null || !v.isTextual()) {
            throw new AyaException("field \"" + field + "\" must be a string in " + abbreviate(node));
        }
        return v.asText();
    }

    static JsonNode array(JsonNode node, String field) {
        JsonNode v = node.get(field);
        if (v == null || !v.isArray()) {
            throw new AyaException("field \"" + field + "\" must be an array in " + abbreviate(node));
        }
        return v;
    }

    /** A {"String": s} or {"Regex": r} pattern object. */
    static Pattern pattern(JsonNode node, String what) {
        if (node != null && node.has("String")) return OnigRegex.literal(node.get("String").asText());
        if (node != null && node.has("Regex")) return OnigRegex.compile(node.get("Regex").asText());
        throw new AyaException(what + " has no {\"String\"} or {\"Regex\"} pattern: " + abbreviate(node));
    }

    static String abbreviate(JsonNode node) {
        String s = String.valueOf(node);
        return s.length() > 120 ? s.substring(0, 117) + "..." : s;
    }
}
