package aya.generation;

/**
 * What one generation produced.
 *
 * @param ids             generated ids, without the end token that stopped it
 * @param text            their text (special tokens skipped), cut before a stop string
 * @param stopReason      why it ended
 * @param endToken        the end token that stopped it (END_TOKEN), else -1
 * @param promptTokens    tokens of the prompt
 * @param reusedTokens    prompt tokens already in the KV cache (not processed again)
 * @param prefillNanos    time to process the new prompt tokens
 * @param firstTokenNanos time from the call to the first generated token
 * @param decodeNanos     time spent generating after the first token
 */
public record GenerationResult(int[] ids, String text, StopReason stopReason, int endToken, int promptTokens, int reusedTokens,
                               long prefillNanos, long firstTokenNanos, long decodeNanos) {

    /** Prompt tokens processed per second (the reused ones are not counted). */
    public double prefillTokensPerSecond() {
        int processed = promptTokens - reusedTokens;
        return prefillNanos <= 0 ? 0 : processed * 1e9 / prefillNanos;
    }

    /** Tokens generated per second after the first one (each one is a forward pass). */
    public double decodeTokensPerSecond() {
        return decodeNanos <= 0 || ids.length < 2 ? 0 : (ids.length - 1) * 1e9 / decodeNanos;
    }

    /** The llama.cpp-style timing summary (several lines, for stderr). */
    public String timings() {
        return String.format(java.util.Locale.ROOT,
                "prompt: %d tokens (%d reused from the cache), %.1f tok/s%n"
                        + "first token after %.0f ms%n"
                        + "generated: %d tokens, %.2f tok/s (stop: %s)",
                promptTokens, reusedTokens, prefillTokensPerSecond(), firstTokenNanos / 1e6,
                ids.length, decodeTokensPerSecond(), stopReason.name().toLowerCase(java.util.Locale.ROOT));
    }
}
