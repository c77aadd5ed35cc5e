package aya.generation;

import aya.AyaException;
import aya.config.GenerationConfig;
import aya.sampling.SamplerSettings;

import java.util.ArrayList;
import java.util.List;

/**
 * One generation request besides the prompt. Build one with {@link AyaModel#settings()} (the model's
 * generation_config.json fills in what is not set) or {@link #builder()} (llama.cpp's defaults):
 *
 * <pre>{@code
 * GenerationSettings settings = model.settings().temperature(0).seed(42).maxTokens(256).build();
 * }</pre>
 *
 * @param sampling    how each token is chosen (temperature 0 = greedy)
 * @param maxTokens   tokens to generate at most
 * @param stopStrings generation stops when the text contains one; it is not part of the output
 * @param ignoreEos   keep going through end tokens (they are then part of the ids, and skipped in the text like
 *                    other special tokens)
 */
public record GenerationSettings(SamplerSettings sampling, int maxTokens, List<String> stopStrings, boolean ignoreEos) {

    /** Tokens a builder generates at most when neither it nor generation_config.json's max_new_tokens says. */
    public static final int DEFAULT_MAX_TOKENS = 256;

    /** Checks the values; prefer {@link #builder()}, which names each one. */
    public GenerationSettings {
        if (sampling == null) throw new AyaException("sampling settings are missing");
        if (maxTokens < 0) throw new AyaException("max tokens must be >= 0, got " + maxTokens);
        stopStrings = List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) throw new AyaException("a stop string cannot be empty");
        }
    }

    /** Greedy decoding of up to {@code maxTokens} tokens, stopping at end tokens. */
    public static GenerationSettings greedy(int maxTokens) {
        return builder().temperature(0).maxTokens(maxTokens).build();
    }

    /** A builder whose unset sampling values take llama.cpp's defaults (no generation_config.json). */
    public static Builder builder() {
        return new Builder(GenerationConfig.NONE);
    }

    /**
     * A builder whose unset values come from {@code defaults} (a model's generation_config.json), else llama.cpp's
     * defaults; {@link AyaModel#settings()} is this with the model's own file.
     */
    public static Builder builder(GenerationConfig defaults) {
        return new Builder(defaults);
    }

    /**
     * Sets what differs from the defaults, then {@link #build()}. Sampling values have llama.cpp's names and
     * meanings (see {@link SamplerSettings}); each is checked when the settings are built.
     */
    public static final class Builder {
        private final GenerationConfig defaults;
        // null = not set: generation_config.json's value, else llama.cpp's default (SamplerSettings.resolve)
        private Float temperature;
        private Integer topK;
        private Float topP;
        private Float minP;
        private Float repeatPenalty;
        private Integer repeatLastN;
        private Long seed;
        private int maxTokens;
        private final List<String> stopStrings = new ArrayList<>();
        private boolean ignoreEos;

        private Builder(GenerationConfig defaults) {
            if (defaults == null) throw new AyaException("generation defaults are missing (use GenerationConfig.NONE for none)");
            this.defaults = defaults;
            this.maxTokens = defaults.maxNewTokens() > 0 ? defaults.maxNewTokens() : DEFAULT_MAX_TOKENS;
        }

        /** 0 = greedy (argmax); otherwise the logits are divided by it after the filters. */
        public Builder temperature(double temperature) {
            this.temperature = (float) temperature;
            return this;
        }

        /** Keep the k most likely tokens; 0 = off. */
        public Builder topK(int topK) {
            this.topK = topK;
            return this;
        }

        /** Keep the smallest most-likely set whose probability reaches p; 1 = off. */
        public Builder topP(double topP) {
            this.topP = (float) topP;
            return this;
        }

        /** Drop tokens whose probability is below minP x that of the most likely one; 0 = off. */
        public Builder minP(double minP) {
            this.minP = (float) minP;
            return this;
        }

        /** Penalty on tokens among the last {@link #repeatLastN(int)}; 1 = off. */
        public Builder repeatPenalty(double repeatPenalty) {
            this.repeatPenalty = (float) repeatPenalty;
            return this;
        }

        /** How many recent tokens the repeat penalty looks at; 0 = off, -1 = the whole context. */
        public Builder repeatLastN(int repeatLastN) {
            this.repeatLastN = repeatLastN;
            return this;
        }

        /** The random seed: the same seed gives the same text on the same backend. Unset = a fresh random seed. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Tokens to generate at most (default: generation_config.json's max_new_tokens, else {@value GenerationSettings#DEFAULT_MAX_TOKENS}). */
        public Builder maxTokens(int maxTokens) {
            this.maxTokens = maxTokens;
            return this;
        }

        /** Adds texts that end the generation when they appear (they are not part of the output). */
        public Builder stopStrings(String... texts) {
            stopStrings.addAll(List.of(texts));
            return this;
        }

        /** Keep generating through end tokens (default false). */
        public Builder ignoreEos(boolean ignoreEos) {
            this.ignoreEos = ignoreEos;
            return this;
        }

        /** The settings; an AyaException names the first value out of range. */
        public GenerationSettings build() {
            SamplerSettings.Overrides set = new SamplerSettings.Overrides(temperature, topK, topP, minP,
                    repeatPenalty, repeatLastN, seed);
            return new GenerationSettings(SamplerSettings.resolve(set, defaults), maxTokens, stopStrings, ignoreEos);
        }
    }
}
