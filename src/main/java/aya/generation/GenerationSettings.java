package aya.generation;

import aya.AyaException;
import aya.sampling.SamplerSettings;

import java.util.List;

/**
 * One generation request besides the prompt.
 *
 * @param sampling    how each token is chosen (temperature 0 = greedy)
 * @param maxTokens   tokens to generate at most
 * @param stopStrings generation stops when the text contains one; it is not part of the output
 * @param ignoreEos   keep going through end tokens (they are then part of the ids, and skipped in the text like
 *                    other special tokens)
 */
public record GenerationSettings(SamplerSettings sampling, int maxTokens, List<String> stopStrings, boolean ignoreEos) {

    public GenerationSettings {
        if (maxTokens < 0) throw new AyaException("max tokens must be >= 0, got " + maxTokens);
        stopStrings = List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) throw new AyaException("a stop string cannot be empty");
        }
    }

    /** Greedy decoding of up to {@code maxTokens} tokens, stopping at end tokens. */
    public static GenerationSettings greedy(int maxTokens) {
        return new GenerationSettings(new SamplerSettings(0, 0, 1, 0, 1, 0, 0), maxTokens, List.of(), false);
    }
}
