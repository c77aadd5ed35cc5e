package aya.config;

import aya.AyaException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What {@code generation_config.json} says about decoding: the one reader of that file (the sampler maps it in
 * {@code SamplerSettings.resolve}). Absent token ids fall back to config.json's; absent sampling fields are null
 * ("no preference": the sampler then uses llama.cpp's defaults).
 *
 * @param bosTokenId        beginning-of-sequence id, or -1
 * @param eosTokenIds       ids that end generation (eos_token_id may be an int or a list)
 * @param padTokenId        padding id, or -1
 * @param doSample          false asks for greedy decoding (transformers' default); null when absent
 * @param temperature       sampling temperature, null when absent
 * @param topK              top-k cut (0 = off), null when absent
 * @param topP              nucleus mass, null when absent
 * @param minP              min-p ratio, null when absent
 * @param repetitionPenalty CTRL repetition penalty (1 = off), null when absent
 * @param maxNewTokens      suggested generation length, 0 when absent
 */
public record GenerationConfig(int bosTokenId, int[] eosTokenIds, int padTokenId, Boolean doSample,
                               Float temperature, Integer topK, Float topP, Float minP, Float repetitionPenalty,
                               int maxNewTokens) {

    /** No file and no model config: nothing known. */
    public static final GenerationConfig NONE = new GenerationConfig(-1, new int[0], -1, null, null, null, null, null, null, 0);

    /** Reads {@code dir/generation_config.json}, or derives one from the model config when the file is absent. */
    public static GenerationConfig load(Path dir, ModelConfig model) {
        Path file = dir.resolve("generation_config.json");
        if (!Files.exists(file)) {
            return fromModel(model);
        }
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new AyaException(file + ": cannot read: " + e.getMessage());
        }
        return parse(text, file.toString(), model);
    }

    /** Only the model config's ids, no sampling advice (a directory without the file, or a GGUF, which has none). */
    public static GenerationConfig fromModel(ModelConfig model) {
        return model == null ? NONE
                : new GenerationConfig(model.bosTokenId(), model.eosTokenIds(), model.padTokenId(), null, null, null, null, null, null, 0);
    }

    /** Parses the JSON text; {@code source} names the file in errors; {@code model} (may be null) gives default ids. */
    public static GenerationConfig parse(String json, String source, ModelConfig model) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json);
        } catch (JsonProcessingException e) {
            throw new AyaException(source + ": not valid JSON: " + ModelConfig.firstLine(e.getOriginalMessage()));
        }
        if (root == null || !root.isObject()) {
            throw new AyaException(source + ": not a JSON object");
        }
        ModelConfig.Fields f = new ModelConfig.Fields(root, source);
        int bos = root.has("bos_token_id") ? f.optionalId("bos_token_id", -1) : model == null ? -1 : model.bosTokenId();
        int pad = root.has("pad_token_id") ? f.optionalId("pad_token_id", -1) : model == null ? -1 : model.padTokenId();
        int[] eos = f.ids("eos_token_id", model == null ? new int[0] : model.eosTokenIds());
        Boolean doSample = root.hasNonNull("do_sample") ? f.bool("do_sample", false) : null;
        Float temperature = number(f, root, "temperature");
        Float topP = number(f, root, "top_p");
        Float minP = number(f, root, "min_p");
        Float penalty = number(f, root, "repetition_penalty");
        Float topKValue = number(f, root, "top_k");
        Integer topK = null;
        if (topKValue != null) {
            if (topKValue != Math.rint(topKValue) || topKValue < 0) {
                throw new AyaException(source + ": top_k must be a whole number >= 0, got " + topKValue);
            }
            topK = topKValue.intValue();
        }
        check(temperature == null || temperature >= 0, source + ": temperature must be >= 0, got " + temperature);
        check(topP == null || (topP >= 0 && topP <= 1), source + ": top_p must be between 0 and 1, got " + topP);
        check(minP == null || (minP >= 0 && minP <= 1), source + ": min_p must be between 0 and 1, got " + minP);
        check(penalty == null || (penalty > 0 && Float.isFinite(penalty)), source + ": repetition_penalty must be > 0, got " + penalty);
        int maxNew = root.hasNonNull("max_new_tokens") ? f.positive("max_new_tokens", 0) : 0;
        return new GenerationConfig(bos, eos, pad, doSample, temperature, topK, topP, minP, penalty, maxNew);
    }

    private static Float number(ModelConfig.Fields f, JsonNode root, String field) {
        return root.hasNonNull(field) ? (float) f.number(field, 0) : null;
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new AyaException(message);
    }

    public boolean isEos(int id) {
        for (int e : eosTokenIds) {
            if (e == id) return true;
        }
        return false;
    }
}
