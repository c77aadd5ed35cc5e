package aya.server;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.GenerationSettings;
import aya.sampling.SamplerSettings;
import aya.tokenizer.ChatTemplate;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A validated {@code /v1/chat/completions} or {@code /v1/completions} body: the prompt as token ids and how to
 * generate. Every wrong field is an {@link ApiError} (400) naming it.
 *
 * @param prompt       token ids: the chat template's rendering (chat), or the raw prompt with BOS / the given ids
 * @param settings     sampling, max tokens, stop strings
 * @param stream       answer as server-sent events
 * @param includeUsage streaming: a last chunk with the usage ({@code stream_options.include_usage})
 */
record CompletionRequest(int[] prompt, GenerationSettings settings, boolean stream, boolean includeUsage) {

    static final Set<String> ROLES = Set.of("system", "user", "assistant");

    /** {@code POST /v1/chat/completions}: {@code messages} rendered with the model's chat template. */
    static CompletionRequest chat(JsonNode body, AyaModel model, int context) {
        ChatTemplate template = model.chatTemplate().orElseThrow(() -> ApiError.invalid("messages",
                "this model has no chat template (a base model): use /v1/completions"));
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray()) throw ApiError.invalid("messages", "'messages' must be an array of messages");
        if (messages.isEmpty()) throw ApiError.invalid("messages", "'messages' is empty");
        List<ChatTemplate.Message> chat = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String at = "messages[" + i + "]";
            if (!m.isObject()) throw ApiError.invalid(at, at + " must be an object with 'role' and 'content'");
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) throw ApiError.invalid(at + ".role", at + ".role must be a string");
            if (!ROLES.contains(role.asText())) {
                throw ApiError.invalid(at + ".role", at + ".role '" + role.asText() + "' is not one of system, user, assistant");
            }
            chat.add(new ChatTemplate.Message(role.asText(), content(m.get("content"), at + ".content")));
        }
        int[] ids;
        try {
            ids = template.encodeChat(chat, true); // message text never becomes control tokens
        } catch (AyaException e) {
            throw ApiError.invalid("messages", e.getMessage());
        }
        return of(body, ids, model, context);
    }

    /** {@code POST /v1/completions}: {@code prompt} as a string (raw, with BOS, as {@code generate --raw}) or token ids. */
    static CompletionRequest completion(JsonNode body, AyaModel model, int context) {
        JsonNode prompt = body.get("prompt");
        if (prompt != null && prompt.isArray() && prompt.size() == 1 && prompt.get(0).isTextual()) prompt = prompt.get(0);
        int[] ids;
        if (prompt != null && prompt.isTextual()) {
            ids = model.tokenizer().encode(prompt.asText(), true);
        } else if (prompt != null && prompt.isArray() && (prompt.isEmpty() || prompt.get(0).isNumber())) {
            ids = tokenIds(prompt, "prompt", model.config().vocabSize());
        } else {
            throw ApiError.invalid("prompt", "'prompt' must be a string or an array of token ids (one prompt per request)");
        }
        return of(body, ids, model, context);
    }

    /** Token ids from a JSON array, each in [0, vocab). */
    static int[] tokenIds(JsonNode array, String param, int vocab) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = array.get(i);
            if (!t.canConvertToInt() || !t.isIntegralNumber() || t.asInt() < 0 || t.asInt() >= vocab) {
                throw ApiError.invalid(param, "'" + param + "'[" + i + "] must be a token id between 0 and " + (vocab - 1) + ", got " + t);
            }
            ids[i] = t.asInt();
        }
        return ids;
    }

    private static String content(JsonNode content, String at) {
        if (content == null || content.isNull()) return "";
        if (content.isTextual()) return content.asText();
        if (!content.isArray()) throw ApiError.invalid(at, at + " must be a string or an array of text parts");
        StringBuilder text = new StringBuilder();
        for (JsonNode part : content) {
            JsonNode type = part.get("type"), t = part.get("text");
            if (type == null || !"text".equals(type.asText()) || t == null || !t.isTextual()) {
                throw ApiError.invalid(at, at + ": only parts {\"type\": \"text\", \"text\": ...} are supported");
            }
            text.append(t.asText());
        }
        return text.toString();
    }

    private static CompletionRequest of(JsonNode body, int[] prompt, AyaModel model, int context) {
        Integer n = integer(body, "n");
        if (n != null && n != 1) throw ApiError.invalid("n", "'n' must be 1 (one choice per request), got " + n);
        Integer max = integer(body, "max_completion_tokens");
        String maxName = "max_completion_tokens";
        if (max == null) {
            max = integer(body, "max_tokens");
            maxName = "max_tokens";
        }
        if (max != null && max < 1) throw ApiError.invalid(maxName, "'" + maxName + "' must be at least 1, got " + max);
        Long seed = body.hasNonNull("seed") ? longValue(body, "seed") : null;
        SamplerSettings.Overrides overrides = new SamplerSettings.Overrides(number(body, "temperature"), integer(body, "top_k"),
                number(body, "top_p"), number(body, "min_p"), number(body, "repeat_penalty"), integer(body, "repeat_last_n"), seed);
        boolean stream = bool(body, "stream", false);
        JsonNode options = body.get("stream_options");
        if (options != null && !options.isNull() && !options.isObject()) {
            throw ApiError.invalid("stream_options", "'stream_options' must be an object");
        }
        boolean includeUsage = options != null && options.isObject() && bool(options, "include_usage", false);
        // no max_tokens: until an end token or the context is full, as llama-server's n_predict -1
        GenerationSettings settings = generationSettings(model, overrides, max == null ? context : max, stops(body),
                bool(body, "ignore_eos", false));
        return new CompletionRequest(prompt, settings, stream, includeUsage);
    }

    /**
     * The one place the server builds generation settings: fields the request leaves out come from the model's
     * generation_config.json, else llama.cpp's defaults (as {@code ./aya generate} resolves its flags).
     */
    static GenerationSettings generationSettings(AyaModel model, SamplerSettings.Overrides overrides, int maxTokens,
                                                 List<String> stops, boolean ignoreEos) {
        try {
            return new GenerationSettings(model.samplerSettings(overrides), maxTokens, stops, ignoreEos);
        } catch (AyaException e) { // a value out of range, e.g. top_p 2
            throw ApiError.invalid(null, e.getMessage());
        }
    }

    private static List<String> stops(JsonNode body) {
        JsonNode stop = body.get("stop");
        List<String> out = new ArrayList<>();
        if (stop == null || stop.isNull()) return out;
        if (stop.isTextual()) {
            out.add(stop.asText());
        } else if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual()) throw ApiError.invalid("stop", "'stop' must be a string or an array of strings");
                out.add(s.asText());
            }
        } else {
            throw ApiError.invalid("stop", "'stop' must be a string or an array of strings");
        }
        if (out.contains("")) throw ApiError.invalid("stop", "a stop string cannot be empty");
        return out;
    }

    private static Integer integer(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw ApiError.invalid(name, "'" + name + "' must be an integer, got " + v);
        return v.asInt();
    }

    private static long longValue(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw ApiError.invalid(name, "'" + name + "' must be an integer, got " + v);
        return v.asLong();
    }

    private static Float number(JsonNode body, String name) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isNumber()) throw ApiError.invalid(name, "'" + name + "' must be a number, got " + v);
        return (float) v.asDouble();
    }

    static boolean bool(JsonNode body, String name, boolean absent) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return absent;
        if (!v.isBoolean()) throw ApiError.invalid(name, "'" + name + "' must be true or false, got " + v);
        return v.asBoolean();
    }
}
