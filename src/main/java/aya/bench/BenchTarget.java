package aya.bench;

/**
 * What {@code aya bench} measures: one loaded model on one backend. The engine adapts its model to this, so the
 * measurement loop (and its tests) do not depend on the engine's classes.
 */
public interface BenchTarget extends AutoCloseable {

    /** Backend name as shown in reports: {@code java} or {@code native}. */
    String backend();

    /** Weight format: {@code bf16}, {@code f32}, {@code q8_0}, {@code q4_0}... */
    String quant();

    /** Activation type of the matmuls: {@code f32} (exact) or {@code bf16} (opt-in, prefill and decode). */
    String activations();

    /** Kernel implementation details for the report, e.g. {@code java (512-bit vectors)}. */
    String kernels();

    /** Bytes of all weights the model holds. */
    long weightBytes();

    /** Bytes of the backend's own copies of matrices made at load, on top of the weights (0 when it packs none). */
    default long packedBytes() {
        return 0;
    }

    /** Bytes one decode step at position {@code pos} must read from memory (weights, head, KV cache). */
    long bytesReadPerDecodeToken(int pos);

    /**
     * Makes every page of every weight resident in memory (reads them from disk if they are not in the page cache)
     * and returns the bytes covered. The runner counts its time as load time: a memory-mapped model "loads" in
     * a fraction of a second, and its first tokens would otherwise run off the disk.
     */
    long touchWeights();

    /** Vocabulary size: prompt tokens are drawn from [0, vocabSize). */
    int vocabSize();

    /** Largest position the model's state can hold (depth + prompt + generated tokens must fit). */
    int maxPositions();

    /**
     * Fills the KV cache with {@code depth} tokens (random ids, a real prefill), untimed: the tests then run at
     * positions from depth on, as llama-bench's {@code -d}. Called once, before any test.
     */
    void fillContext(int depth);

    /**
     * Runs the prompt {@code tokens} at positions {@code pos0, pos0 + 1, ...} (dropping whatever the cache held from
     * pos0 on), computing the logits of the last position only.
     */
    void prefill(int[] tokens, int pos0);

    /** Runs one token at position {@code pos} (dropping cache entries from pos on) and computes its logits. */
    void decode(int token, int pos);

    /** The per-operation profile of the timed decode steps, or null when not profiling. */
    default String decodeProfile() {
        return null;
    }

    /** The per-operation profile of the timed prefills, or null when not profiling. */
    default String prefillProfile() {
        return null;
    }

    @Override
    default void close() {
    }
}
