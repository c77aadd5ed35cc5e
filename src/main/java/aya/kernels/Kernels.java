package aya.kernels;

import java.lang.foreign.MemorySegment;

/**
 * The math the model needs, over raw memory. Two implementations compute the same thing:
 * {@link JavaKernels} (Vector API) and {@link NativeKernels} (C over FFM, zero-copy).
 *
 * <p>Conventions (both backends follow them exactly):
 * <ul>
 *   <li>Activations, norms weights, KV cache and outputs are f32, native-order, 64-byte aligned where allocated here.
 *   <li>Weight matrices are [rows, cols] row-major in a {@link WeightType}, read in place (e.g. from the mmapped file).
 *   <li>Kernels are single-threaded and thread-safe: Java owns the threads and hands each call a slice of the
 *       work ({@code [rowStart, rowEnd)}, {@code [itemStart, itemEnd)}); slices of one call never overlap in output.
 *   <li>Sizes are element counts, not bytes.
 * </ul>
 */
public sealed interface Kernels extends AutoCloseable permits JavaKernels, NativeKernels {

    /** Human-readable backend name, e.g. {@code java (512-bit vectors)} or {@code native (avx512bf16)}. */
    String name();

    /**
     * Matrix product with a weight matrix w [outDim, inDim] of {@code type}:
     * {@code out[t * outStride + r] = sum_i w[r, i] * x[t * inDim + i]} for {@code t < tokens},
     * {@code rowStart <= r < rowEnd}. tokens == 1 is decode (matrix-vector); tokens > 1 is prefill.
     */
    void matmul(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                int tokens, int inDim, int outStride, int rowStart, int rowEnd);

    /**
     * This backend's own copy of weight matrix w [rows, cols] of {@code type} in a layout its kernels read faster
     * than the file's, or null when it reads the file's layout as is (the default). Called once per matrix at load,
     * with the model's pool to spread the copying; the copy is freed by {@link #close()}.
     */
    default PackedMatrix pack(WeightType type, MemorySegment w, int rows, int cols, Parallel pool) {
        return null;
    }

    /** {@link #matmul} with a matrix {@link #pack} returned (same result up to the order of the sums). */
    default void matmul(PackedMatrix w, MemorySegment x, MemorySegment out,
                        int tokens, int outStride, int rowStart, int rowEnd) {
        throw new UnsupportedOperationException(name() + " packs no matrices");
    }

    /**
     * {@link #matmul} of a BF16 weight matrix with the activations rounded to bf16 first (round to nearest even, NaN
     * stays NaN, f32 denormals become zero: {@link JavaKernels#roundToBf16}). The product of two bf16 values is exact
     * in f32 and the sums are f32, so only the rounding of x and the order of the sums differ from {@code matmul}.
     * The opt-in path (prefill and decode); fast prefill on CPUs with AVX512_BF16 (vdpbf16ps).
     */
    void matmulBf16Activations(MemorySegment w, MemorySegment x, MemorySegment out,
                               int tokens, int inDim, int outStride, int rowStart, int rowEnd);

    /**
     * Prefill: activations x [tokens, inDim] prepared once for the matmul calls of the job that follows, the work spread
     * over {@code pool} (the Java GEMM transposes x into token tiles, which every call over a slice of rows would
     * otherwise do again). Until the returned handle is closed x must not change, and the {@link #matmul} calls (or
     * with {@code bf16}, the {@link #matmulBf16Activations} calls) whose x is an equal segment (same memory, same
     * size) with these tokens and inDim may read the prepared copy: their results are the same bit for bit.
     * {@code readers} are the job's matrices as {@link #matmul} takes them (null for one in the file's layout): only
     * what their products read is prepared (the Java backend's 4-bit GEMM reads x quantized, its f32 GEMM transposed),
     * and a product with another matrix reads x itself. Called outside the pool's jobs (it runs one); the default
     * prepares nothing: the native kernels read x as it is.
     */
    default SharedInput shareInput(MemorySegment x, int tokens, int inDim, boolean bf16, Parallel pool,
                                   PackedMatrix... readers) {
        return SharedInput.NONE;
    }

    /**
     * Pieces per thread a prefill job's rows are cut into (the pool hands them out in order): the more pieces, the
     * less a thread waits at the job's end for the other's last piece, but each piece is one {@link #matmul} call per
     * matrix and pays what a call prepares for itself (the native kernels quantize x per call).
     */
    default int prefillPiecesPerThread() {
        return 2;
    }

    /** What {@link #shareInput} prepared; closing it gives the copy back to the backend. */
    interface SharedInput extends AutoCloseable {
        /** Nothing prepared. */
        SharedInput NONE = () -> { };

        @Override
        void close();
    }

    /** out[i] = f32(row {@code row} of table [rows, dim] in {@code type}) for i &lt; dim: embedding lookup. */
    void embed(WeightType type, MemorySegment table, long row, int dim, MemorySegment out);

    /**
     * Bias-free LayerNorm over each of {@code tokens} rows of width dim, in f32:
     * {@code out = (x - mean(x)) / sqrt(var(x) + eps) * weight}, var biased (divide by dim).
     * out may equal x.
     */
    void layerNorm(MemorySegment x, MemorySegment weight, MemorySegment out, int tokens, int dim, float eps);

    /**
     * Interleaved rotary embedding, in place, on vec [tokens, heads, headDim]: for token t at position
     * pos0 + t, pair (2i, 2i+1) of every head rotates by the angle whose cosine and sine are
     * {@code cos[(pos0 + t) * headDim/2 + i]} and {@code sin[...]} (tables [positions, headDim/2]).
     */
    void ropeInterleaved(MemorySegment vec, int tokens, int heads, int headDim, int pos0,
                         MemorySegment cos, MemorySegment sin);

    /**
     * Causal attention over a KV cache for query tokens t at positions pos0 + t.
     * q and out are [tokens, heads, headDim]; kCache and vCache are [capacity, kvHeads, headDim] and
     * the key of position p sits in slot {@code p % capacity} (a ring buffer when capacity is smaller than
     * the context). Query head h reads KV head {@code h / (heads / kvHeads)} (GQA).
     * The query at position pos sees keys {@code max(0, pos - window + 1) <= k <= pos};
     * {@code window == 0} means no window (global layer). Scores are scaled by {@code scale}, softmax in f32.
     * Work items are {@code item = t * heads + h}, this call computes {@code [itemStart, itemEnd)}.
     * scratch holds at least {@code capacity} floats, private to the calling thread.
     */
    void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment out,
                   int tokens, int pos0, int heads, int kvHeads, int headDim, int capacity, int window,
                   float scale, MemorySegment scratch, int itemStart, int itemEnd);

    /** SwiGLU gate, in place: {@code gate[i] = silu(gate[i]) * up[i]} for i in [start, end). */
    void swiglu(MemorySegment gate, MemorySegment up, long start, long end);

    /** Softmax in place over x[0, n), in f32 (max-subtracted). */
    void softmax(MemorySegment x, int n);

    /** Frees what the backend holds (not the segments it was given). */
    @Override
    default void close() {
    }
}
