package aya.sampling;

import aya.AyaException;
import aya.config.GenerationConfig;

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
