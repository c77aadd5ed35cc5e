package aya.config;

import aya.AyaException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What {@code generation_config.json} says about decoding. Absent file or fields fall back to the model config's
 * token ids and to "no preference" for sampling (NaN / 0), which the sampler treats as its own defaults.
 *
 * @param bosTokenId  beginning-of-sequence id, or -1
 * @param eosTokenIds ids that end generation (eos_token_id may be an int or a list)
 * @param padTokenId  padding id, or -1
 * @param doSample    whether the checkpoint asks for sampling (false: greedy)
 * @param temperature sampling temperature, NaN when absent
 * @param topP        nucleus mass, NaN when absent
 * @param topK        top-k cut, 0 when absent
 * @param maxNewTokens suggested generation length, 0 when absent
 */
public record GenerationConfig(int bosTokenId, int[] eosTokenIds, int padTokenId, boolean doSample,
                               double temperature, double topP, int topK, int maxNewTokens) {

    /** Reads {@code dir/generation_config.json}, or derives one from the model config when the file is absent. */
    public static GenerationConfig load(Path dir, ModelConfig model) {
        Path file = dir.resolve("generation_config.json");
        if (!Files.exists(file)) {
            return new GenerationConfig(model.bosTokenId(), model.eosTokenIds(), model.padTokenId(), false,
                    Double.NaN, Double.NaN, 0, 0);
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new AyaException(file + ": not valid JSON: " + ModelConfig.firstLine(e.getMessage()));
        }
        if (root == null || !root.isObject()) {
            throw new AyaException(file + ": not a JSON object");
        }
        ModelConfig.Fields f = new ModelConfig.Fields(root, file.toString());
        int bos = root.has("bos_token_id") ? f.optionalId("bos_token_id", -1) : model.bosTokenId();
        int pad = root.has("pad_token_id") ? f.optionalId("pad_token_id", -1) : model.padTokenId();
        int[] eos = f.ids("eos_token_id", model.eosTokenIds());
        boolean doSample = f.bool("do_sample", false);
        double temperature = f.number("temperature", Double.NaN);
        double topP = f.number("top_p", Double.NaN);
        int topK = root.hasNonNull("top_k") ? (int) f.number("top_k", 0) : 0;
        int maxNew = root.hasNonNull("max_new_tokens") ? f.positive("max_new_tokens", 0) : 0;
        return new GenerationConfig(bos, eos, pad, doSample, temperature, topP, topK, maxNew);
    }

    public boolean isEos(int id) {
        for (int e : eosTokenIds) {
            if (e == id) return true;
        }
        return false;
    }
}
