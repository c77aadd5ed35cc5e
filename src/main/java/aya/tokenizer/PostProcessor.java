package aya.tokenizer;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * A tokenizer.json "post_processor", applied to a single sequence when special tokens are requested
 * (for example TemplateProcessing "&lt;BOS&gt; $A"). Offsets-only processors (ByteLevel) change nothing here.
 */
interface PostProcessor {
    int[] process(int[] ids);

    static PostProcessor fromJson(JsonNode json) {
        if (json == null || json.isNull()) return null;
        String type = Json.type(json, "post_processor");
        return switch (type) {
            case "ByteLevel" -> ids -> ids;
            case "TemplateProcessing" -> template(json);
            case "RobertaProcessing", "BertProcessing" -> {
                int sep = Json.array(json, "sep").get(1).asInt();
                int cls = Json.array(json, "cls").get(1).asInt();
                yield ids -> {
                    int[] out = new int[ids.length + 2];
                    out[0] = cls;
                    System.arraycopy(ids, 0, out, 1, ids.length);
                    out[ids.length + 1] = sep;
                    return out;
                };
            }
            case "Sequence" -> {
                List<PostProcessor> parts = new ArrayList<>();
                for (JsonNode n : Json.array(json, "processors")) parts.add(fromJson(n));
                yield ids -> {
                    for (PostProcessor p : parts) ids = p.process(ids);
                    return ids;
                };
            }
            default -> throw new AyaException("unsupported post_processor type '" + type + "'");
        };
    }

    private static PostProcessor template(JsonNode json) {
        JsonNode single = Json.array(json, "single");
        JsonNode specials = json.path("special_tokens");
        // Each template item is either the sequence itself (null) or a fixed run of special ids.
        List<int[]> items = new ArrayList<>();
        for (JsonNode item : single) {
            if (item.has("Sequence")) {
                items.add(null);
            } else if (item.has("SpecialToken")) {
                String name = Json.string(item.get("SpecialToken"), "id");
                JsonNode special = specials.get(name);
                if (special == null) {
                    throw new AyaException("TemplateProcessing uses special token '" + name + "' missing from its special_tokens");
                }
                JsonNode idsJson = Json.array(special, "ids");
                int[] ids = new int[idsJson.size()];
                for (int i = 0; i < ids.length; i++) ids[i] = idsJson.get(i).asInt();
                items.add(ids);
            } else {
                throw new AyaException("TemplateProcessing item is neither Sequence nor SpecialToken: " + item);
            }
        }
        return ids -> {
            int total = 0;
            for (int[] item : items) total += item == null ? ids.length : item.length;
            int[] out = new int[total];
            int k = 0;
            for (int[] item : items) {
                int[] src = item == null ? ids : item;
                System.arraycopy(src, 0, out, k, src.length);
                k += src.length;
            }
            return out;
        };
    }
}
