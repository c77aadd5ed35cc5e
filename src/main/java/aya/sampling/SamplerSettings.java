package aya.sampling;

import aya.AyaException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.SecureRandom;

/**
 * How the next token is picked, with llama.cpp's names and meanings.
 *
 * @param temperature   0 = greedy argmax; otherwise logits are divided by it after the filters
 * @param topK          keep the k most likely tokens; 0 = off
 * @param topP          keep the smallest most-likely set whose probability reaches p; 1 = off
 * @param minP          keep tokens with probability >= minP * (probability of the most likely one); 0 = off
 * @param repeatPenalty CTRL penalty on tokens seen in the last repeatLastN: positive logits divided, others multiplied; 1 = off
 * @param repeatLastN   how many recent tokens the penalty looks at; 0 = off, -1 = the whole context
 * @param seed          the random generator's seed: the same seed gives the same choices
 */
public record SamplerSettings(float temperature, int topK, float topP, float minP,
                              float repeatPenalty, int repeatLastN, long seed) {

    // llama.cpp's defaults (common/common.h, common_params_sampling)
    public static final float DEFAULT_TEMPERATURE = 0.8f;
    public static final int DEFAULT_TOP_K = 40;
    public static final float DEFAULT_TOP_P = 0.95f;
    public static final float DEFAULT_MIN_P = 0.05f;
    public static final float DEFAULT_REPEAT_PENALTY = 1.0f;
    public static final int DEFAULT_REPEAT_LAST_N = 64;

    public SamplerSettings {
        check(!Float.isNaN(temperature) && temperature >= 0, "temperature must be >= 0 (0 = greedy), got " + temperature);
        check(topK >= 0, "top-k must be >= 0 (0 = off), got " + topK);
        check(topP >= 0 && topP <= 1, "top-p must be between 0 and 1 (1 = off), got " + topP);
        check(minP >= 0 && minP <= 1, "min-p must be between 0 and 1 (0 = off), got " + minP);
        check(repeatPenalty > 0 && Float.isFinite(repeatPenalty), "repeat-penalty must be > 0 (1 = off), got " + repeatPenalty);
        check(repeatLastN >= -1, "repeat-last-n must be >= -1 (0 = off, -1 = whole context), got " + repeatLastN);
    }

    /** True when the choice is the argmax and the random generator is never used. */
    public boolean greedy() {
        return temperature == 0;
    }

    /** Values the user gave on the command line; null = not given. */
    public record Overrides(Float temperature, Integer topK, Float topP, Float minP,
                            Float repeatPenalty, Integer repeatLastN, Long seed) {
        public static final Overrides NONE = new Overrides(null, null, null, null, null, null, null);
    }

    /** The sampling fields of a model's generation_config.json; null = absent. */
    public record GenerationConfig(Boolean doSample, Float temperature, Integer topK, Float topP, Float minP,
                                   Float repetitionPenalty) {
        public static final GenerationConfig NONE = new GenerationConfig(null, null, null, null, null, null);

        /** Reads generation_config.json; a missing file gives {@link #NONE}, a malformed one a one-line error. */
        public static GenerationConfig read(Path file) {
            String text;
            try {
                text = Files.readString(file);
            } catch (NoSuchFileException e) {
                return NONE;
            } catch (IOException e) {
                throw new AyaException("cannot read " + file + ": " + e.getMessage(), e);
            }
            return parse(text, file.toString());
        }

        /** Parses the JSON text; {@code source} names the file in error messages. */
        public static GenerationConfig parse(String json, String source) {
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(json);
            } catch (JsonProcessingException e) {
                throw new AyaException(source + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
            }
            if (root == null || !root.isObject()) throw new AyaException(source + ": expected a JSON object");
            JsonNode doSample = root.get("do_sample");
            Boolean sample = null;
            if (doSample != null && !doSample.isNull()) {
                if (!doSample.isBoolean()) throw new AyaException(source + ": do_sample must be true or false, got " + doSample);
                sample = doSample.booleanValue();
            }
            Float temperature = number(root, "temperature", source);
            Float topP = number(root, "top_p", source);
            Float minP = number(root, "min_p", source);
            Float penalty = number(root, "repetition_penalty", source);
            Float topKValue = number(root, "top_k", source);
            Integer topK = null;
            if (topKValue != null) {
                if (topKValue != Math.rint(topKValue) || topKValue < 0) {
                    throw new AyaException(source + ": top_k must be a whole number >= 0, got " + topKValue);
                }
                topK = topKValue.intValue();
            }
            try {
                // validate ranges with the same rules as the command line, naming the file
                new SamplerSettings(temperature == null ? 1 : temperature, topK == null ? 0 : topK,
                        topP == null ? 1 : topP, minP == null ? 0 : minP, penalty == null ? 1 : penalty, 0, 0);
            } catch (AyaException e) {
                throw new AyaException(source + ": " + e.getMessage(), e);
            }
            return new GenerationConfig(sample, temperature, topK, topP, minP, penalty);
        }

        private static Float number(JsonNode root, String field, String source) {
            JsonNode node = root.get(field);
            if (node == null || node.isNull()) return null;
            if (!node.isNumber()) throw new AyaException(source + ": " + field + " must be a number, got " + node);
            return node.floatValue();
        }
    }

    /**
     * Settings for one run: each value comes from the command line if given, else from generation_config.json,
     * else from llama.cpp's defaults. {@code do_sample: false} in generation_config means greedy (temperature 0),
     * as in transformers, unless the command line sets a temperature. A missing seed gets a fresh random one.
     */
    public static SamplerSettings resolve(Overrides cli, GenerationConfig model) {
        float modelTemperature = Boolean.FALSE.equals(model.doSample()) ? 0f
                : or(model.temperature(), DEFAULT_TEMPERATURE);
        return new SamplerSettings(
                or(cli.temperature(), modelTemperature),
                or(cli.topK(), or(model.topK(), DEFAULT_TOP_K)),
                or(cli.topP(), or(model.topP(), DEFAULT_TOP_P)),
                or(cli.minP(), or(model.minP(), DEFAULT_MIN_P)),
                or(cli.repeatPenalty(), or(model.repetitionPenalty(), DEFAULT_REPEAT_PENALTY)),
                or(cli.repeatLastN(), DEFAULT_REPEAT_LAST_N),
                cli.seed() != null ? cli.seed() : new SecureRandom().nextLong());
    }

    /** llama.cpp's defaults with the given seed. */
    public static SamplerSettings llamaCppDefaults(long seed) {
        return new SamplerSettings(DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, DEFAULT_MIN_P,
                DEFAULT_REPEAT_PENALTY, DEFAULT_REPEAT_LAST_N, seed);
    }

    private static <T> T or(T value, T fallback) {
        return value != null ? value : fallback;
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new AyaException(message);
    }
}
