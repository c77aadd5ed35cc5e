package aya.tokenizer;

import aya.AyaException;
import aya.config.GgufMetadata;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The tokenizer and chat template stored in a GGUF file's metadata ({@code tokenizer.ggml.*}, {@code tokenizer.chat_template}),
 * built as the same pipeline objects a tokenizer.json gives: GGUF keeps the byte-level BPE vocabulary and merges
 * as tokenizer.json has them, and names the pre-tokenizer ({@code tokenizer.ggml.pre}) instead of spelling it out.
 */
public final class GgufTokenizer {

    private GgufTokenizer() {}

    // llama_token_type in llama.cpp's vocabulary
    static final long TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4, TYPE_UNUSED = 5, TYPE_BYTE = 6;

    /** Tiny Aya's pre-tokenizer (llama.cpp's {@code tiny_aya}): digit groups of 3 from the right, the GPT-4o-style split, byte level. */
    static final String TINY_AYA_PRE_TOKENIZER = """
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\\\\d{1,3}(?=(?:\\\\d{3})*\\\\b)"}, "behavior": "Isolated", "invert": false},
              {"type": "Split", "pattern": {"Regex": "[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{Lu}\\\\p{Lt}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]*[\\\\p{Ll}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{Lu}\\\\p{Lt}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]+[\\\\p{Ll}\\\\p{Lm}\\\\p{Lo}\\\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n/]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """;

    /** Pre-tokenizers by their {@code tokenizer.ggml.pre} name (the ones this engine knows). */
    static final Map<String, String> PRE_TOKENIZERS = Map.of("tiny_aya", TINY_AYA_PRE_TOKENIZER);

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The tokenizer of a GGUF file; anything but a byte-level BPE with a known pre-tokenizer is a one-line error. */
    public static Tokenizer tokenizer(GgufMetadata m) {
        String where = m.source();
        String model = m.string("tokenizer.ggml.model");
        if (model == null) throw new AyaException(where + ": no tokenizer in the file (metadata 'tokenizer.ggml.model' is missing)");
        if (!model.equals("gpt2")) {
            throw new AyaException(where + ": tokenizer.ggml.model is '" + model + "', this engine reads only 'gpt2' (byte-level BPE)");
        }
        String pre = m.string("tokenizer.ggml.pre");
        String preJson = PRE_TOKENIZERS.get(pre == null ? "" : pre);
        if (preJson == null) {
            throw new AyaException(where + ": tokenizer.ggml.pre is '" + pre + "', a pre-tokenizer this engine does not know (known: "
                    + String.join(", ", PRE_TOKENIZERS.keySet()) + ")");
        }
        List<String> tokens = m.array("tokenizer.ggml.tokens", String.class);
        if (tokens == null || tokens.isEmpty()) throw new AyaException(where + ": tokenizer.ggml.tokens is missing or empty");
        List<Long> types = m.array("tokenizer.ggml.token_type", Long.class);
        if (types != null && types.size() != tokens.size()) {
            throw new AyaException(where + ": tokenizer.ggml.token_type has " + types.size() + " entries for " + tokens.size() + " tokens");
        }
        List<String> mergeTexts = m.array("tokenizer.ggml.merges", String.class);
        if (mergeTexts == null) throw new AyaException(where + ": tokenizer.ggml.merges is missing");

        // Unused ids (the converter's [PAD<id>] fillers up to the embedding size) are not tokens, as in tokenizer.json.
        Map<String, Integer> vocab = new HashMap<>(tokens.size() * 2);
        ArrayNode added = JSON.createArrayNode();
        for (int id = 0; id < tokens.size(); id++) {
            long type = types == null ? TYPE_NORMAL : types.get(id);
            if (type == TYPE_UNUSED) continue;
            String token = tokens.get(id);
            if (vocab.putIfAbsent(token, id) != null && type == TYPE_NORMAL) {
                throw new AyaException(where + ": tokenizer.ggml.tokens lists '" + token + "' twice (ids " + vocab.get(token) + " and " + id + ")");
            }
            if (type == TYPE_CONTROL || type == TYPE_USER_DEFINED) {
                // control tokens are special (skipped when decoding with skip_special_tokens); both are cut out of raw text
                added.add(JSON.createObjectNode().put("id", id).put("content", token).put("special", type == TYPE_CONTROL)
                        .put("normalized", false).put("single_word", false).put("lstrip", false).put("rstrip", false));
            } else if (type != TYPE_NORMAL && type != TYPE_UNKNOWN) {
                throw new AyaException(where + ": token " + id + " has token_type " + type + ", which a gpt2 vocabulary does not use");
            }
        }
        List<String[]> merges = new ArrayList<>(mergeTexts.size());
        for (int i = 0; i < mergeTexts.size(); i++) {
            String s = mergeTexts.get(i);
            int space = s.indexOf(' ');
            if (space <= 0 || space == s.length() - 1) {
                throw new AyaException(where + ": tokenizer.ggml.merges entry " + i + " '" + s + "' is not two tokens separated by a space");
            }
            merges.add(new String[] {s.substring(0, space), s.substring(space + 1)});
        }

        ObjectNode root = JSON.createObjectNode();
        try {
            root.set("pre_tokenizer", JSON.readTree(preJson));
            root.set("decoder", JSON.readTree("{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true}"));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e); // our own constants
        }
        root.set("added_tokens", added);
        root.set("post_processor", postProcessor(m, tokens));
        ObjectNode settings = JSON.createObjectNode().put("type", "BPE");
        try {
            return new Tokenizer(root, new Bpe(settings, vocab, merges));
        } catch (AyaException e) {
            throw new AyaException(where + ": " + e.getMessage(), e);
        }
    }

    /** BOS before / EOS after the text when add_bos_token / add_eos_token say so (HF's TemplateProcessing). */
    private static JsonNode postProcessor(GgufMetadata m, List<String> tokens) {
        ArrayNode single = JSON.createArrayNode();
        ObjectNode specials = JSON.createObjectNode();
        // llama.cpp adds BOS for a gpt2 vocabulary only when the file says so
        if (m.bool("tokenizer.ggml.add_bos_token", false)) addSpecial(m, tokens, "tokenizer.ggml.bos_token_id", single, specials);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        if (m.bool("tokenizer.ggml.add_eos_token", false)) addSpecial(m, tokens, "tokenizer.ggml.eos_token_id", single, specials);
        ObjectNode p = JSON.createObjectNode().put("type", "TemplateProcessing");
        p.set("single", single);
        p.set("special_tokens", specials);
        return p;
    }

    private static void addSpecial(GgufMetadata m, List<String> tokens, String key, ArrayNode single, ObjectNode specials) {
        int id = m.integer(key, -1);
        if (id < 0 || id >= tokens.size()) {
            throw new AyaException(m.source() + ": " + key + " is " + (id < 0 ? "missing" : id + ", outside the " + tokens.size() + " tokens")
                    + " but the file asks for that token to be added");
        }
        String token = tokens.get(id);
        single.addObject().putObject("SpecialToken").put("id", token).put("type_id", 0);
        ObjectNode s = specials.putObject(token).put("id", token);
        s.putArray("ids").add(id);
        s.putArray("tokens").add(token);
    }

    /** The chat template in {@code tokenizer.chat_template}, with bos/eos/pad/unk named from their ids; empty when absent. */
    public static Optional<ChatTemplate> chatTemplate(GgufMetadata m, Tokenizer tokenizer) {
        String template = m.string("tokenizer.chat_template");
        if (template == null) return Optional.empty();
        Map<String, Object> specials = new LinkedHashMap<>();
        String[][] keys = {{"bos_token", "bos_token_id"}, {"eos_token", "eos_token_id"}, {"unk_token", "unknown_token_id"},
                {"sep_token", "seperator_token_id"}, {"pad_token", "padding_token_id"}};
        for (String[] k : keys) {
            int id = m.integer("tokenizer.ggml." + k[1], -1);
            String text = tokenizer.token(id);
            if (text != null) specials.put(k[0], text);
        }
        return Optional.of(new ChatTemplate(m.source() + " tokenizer.chat_template", template, tokenizer, specials));
    }
}
