package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Pure-Java backend over the Vector API. Weights are read in place from their (memory-mapped) segments:
 * BF16 widens to f32 by a 16-bit shift, F16 through {@link Float#float16ToFloat}, F32 as is.
 * Activations are f32 in native order. Every kernel is single-threaded; the model splits the work.
 */
public final class JavaKernels implements Kernels {

    /** The machine's widest float vectors; at least 128 bits, because BF16 widening needs half of F as shorts. */
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 128
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_128;
    /** As many shorts (BF16 bit patterns) as F has floats. */
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN; // safetensors data is little-endian
    static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    static final ValueLayout.OfShort U16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /** Rows of a weight matrix handled together in decode: one load of x feeds four rows. */
    private static final int ROWS = 4;

    // Prefill is a blocked matrix product (GEMM) in the BLIS manner, with the vectors running along tokens: x is
    // transposed once per call into tiles of TW tokens, and a micro-kernel keeps an RB rows x TW tokens block of the
    // output in twelve vector registers while it walks k, broadcasting one f32 weight per row and loading one vector
    // of x per half tile. The weights need no transpose: each block of rows is widened to f32 row by row.
    /** Rows per micro-kernel: six broadcasts of w and two loads of x feed twelve FMAs (12 + 2 + 1 of 16 AVX2 registers). */
    static final int RB = 6;
    /** Tokens per tile: two vectors (16 on AVX2, 32 on AVX-512). An odd last vector of tokens gets a one-vector tile. */
    static final int TW = 2 * F.length();
    /** k per block: a tile's slice of x (TW x KC f32, 16 KB on AVX2) stays in L1 while all the rows pass over it. */
    static final int KC = 256;
    /**
     * Rows per block, widened to f32 at once, each row in one sequential pass over memory (prefetch-friendly); each k
     * block of them (MC x KC f32, 96 KB) stays in L2 while every token tile passes over it.
     */
    static final int MC = 16 * RB;
    /** Columns widened per pass over a row block: bounds the f32 panel (MC x KR, 768 KB) so it stays near L2. */
    static final int KR = 8 * KC;
    /**
     * Tokens per pass (a multiple of TW for 128- to 512-bit vectors): bounds the per-thread copy of x (11 MB for
     * inDim 11008); the weights are streamed from memory and widened again for each pass, about 5% of a pass's time.
     */
    static final int NC = 256;
    /** Below this many tokens a prefill is cheaper as one matrix-vector product per token (BF16 and F32). */
    static final int GEMM_MIN_TOKENS = 4;

    /** Buffers of one GEMM call, reused by later calls (x's grows to the largest inDim seen). */
    private static final class Gemm {
        /**
         * Up to NC tokens of x in token tiles: the tile of token t0 at t0 * inDim, laid out [inDim][tile width]. Off-heap
         * and 64-byte aligned: in a float[] the vector loads' alignment depends on where the GC put the array, and with
         * ParallelGC (the launcher's) cache-line-splitting loads halved the micro-kernel's speed.
         */
        MemorySegment xt = MemorySegment.NULL;
        private Arena xtArena;
        /** MC rows of w in f32, by k blocks: block k0 at k0 * MC, its row j at + j * kc. */
        float[] panel = new float[0];
        /** TW tokens x KC columns of x on their way into xt. */
        final float[] stage = new float[TW * KC];
        /** The output of the current MC rows for the current tokens, summed over k blocks: [MC][NC]. */
        final float[] acc = new float[MC * NC];

        /** Room for NC tokens of inDim inputs (the old tiles are freed now, not whenever the GC runs). */
        void grow(int inDim) {
            free();
            xtArena = Arena.ofShared();
            xt = xtArena.allocate(4L * NC * inDim, 64);
            panel = new float[MC * Math.min(inDim, KR)];
        }

        void free() {
            if (xtArena != null) xtArena.close();
            xtArena = null;
            xt = MemorySegment.NULL;
        }
    }

    /**
     * GEMM scratch, one per call in flight: a call takes one and puts it back. So the memory is bounded by the threads
     * computing at once (not by every thread that ever ran a prefill, as a ThreadLocal would be: a server making a
     * thread per request would pile up off-heap tiles until the GC noticed), and {@link #close} frees it.
     */
    private final java.util.concurrent.ConcurrentLinkedDeque<Gemm> gemmScratch = new java.util.concurrent.ConcurrentLinkedDeque<>();
    private volatile boolean closed;

    @Override
    public String name() {
        return "java (" + F.vectorBitSize() + "-bit vectors)";
    }

    // ---------------------------------------------------------------------------------------------- matmul

    @Override
    public void matmul(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                       int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        if (KQuant.handles(type)) {
            KQuant.matmul(type, w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            return;
        }
        if (type.quantized()) {
            matmulQuantized(type, w, x, out, tokens, inDim, outStride, rowStart, rowEnd);
            return;
        }
        if (tokens < GEMM_MIN_TOKENS && type != WeightType.F16) {
            for (int t = 0; t < tokens; t++) {
                matvec(type, w, x.asSlice((long) t * inDim * 4), out.asSlice((long) t * outStride * 4), inDim, rowStart, rowEnd);
            }
            return;
        }
        Gemm g = gemmScratch.pollFirst();
        if (g == null) g = new Gemm();
        try {
            if (g.xt.byteSize() < 4L * NC * inDim) {
                g.grow(inDim);
            }
            for (int t0 = 0; t0 < tokens; t0 += NC) {
                gemm(type, w, x, out, t0, Math.min(NC, tokens - t0), inDim, outStride, rowStart, rowEnd, g);
            }
        } finally {
            if (closed) {
                g.free();
            } else {
                gemmScratch.offerFirst(g); // the most recently used one first: its tiles are the warmest
            }
        }
    }

    /** Off-heap bytes of one GEMM call's scratch for inputs of width inDim (x's token tiles). */
    public static long gemmScratchBytes(int inDim) {
        return 4L * NC * inDim;
    }

    /** Frees the GEMM scratch (calls still running keep theirs until they return it). */
    @Override
    public void close() {
        closed = true;
        for (Gemm g; (g = gemmScratch.pollFirst()) != null; ) g.free();
    }

    /**
     * Prefill, tokens [t0, t0 + tokens) with tokens <= NC: for each block of MC rows, widen KR columns of them to f32
     * (row by row), then for each KC block of those run every token tile over it, RB rows at a time. Zero rows and zero tokens pad the last blocks
     * (their sums are never stored; zeros just keep those lanes finite).
     */
    private static void gemm(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out, int t0, int tokens,
                             int inDim, int outStride, int rowStart, int rowEnd, Gemm g) {
        int padded = (tokens + F.length() - 1) / F.length() * F.length();
        MemorySegment xt = g.xt;
        float[] panel = g.panel, acc = g.acc;
        transpose(x, t0, tokens, padded, inDim, xt, g.stage);
        for (int r0 = rowStart; r0 < rowEnd; r0 += MC) {
            int rows = Math.min(MC, rowEnd - r0);
            int blocks = (rows + RB - 1) / RB;
            Arrays.fill(acc, 0, blocks * RB * NC, 0f);
            for (int k1 = 0; k1 < inDim; k1 += KR) {
                int kEnd = Math.min(inDim, k1 + KR);
                // k block k0 of row j lands at (k0 - k1) * MC + j * kc
                for (int j = 0; j < rows; j++) {
                    for (int k0 = k1; k0 < kEnd; k0 += KC) {
                        int kc = Math.min(KC, inDim - k0);
                        widenRow(type, w, (long) (r0 + j) * inDim + k0, kc, panel, (k0 - k1) * MC + j * kc);
                    }
                }
                for (int k0 = k1; k0 < kEnd; k0 += KC) {
                    int kc = Math.min(KC, inDim - k0);
                    int p = (k0 - k1) * MC;
                    Arrays.fill(panel, p + rows * kc, p + blocks * RB * kc, 0f);
                    for (int tile = 0; tile < padded; tile += TW) {
                        int width = Math.min(TW, padded - tile);
                        int xo = tile * inDim + k0 * width;
                        for (int b = 0; b < blocks; b++) {
                            if (width == TW) {
                                kernel6x2(panel, p + b * RB * kc, kc, xt, xo, acc, b * RB * NC + tile);
                            } else {
                                kernel6x1(panel, p + b * RB * kc, kc, xt, xo, acc, b * RB * NC + tile);
                            }
                        }
                    }
                }
            }
            for (int t = 0; t < tokens; t++) { // row by row of out: contiguous writes
                long o = (long) (t0 + t) * outStride + r0;
                for (int j = 0; j < rows; j++) {
                    out.setAtIndex(F32, o + j, acc[j * NC + t]);
                }
            }
        }
    }

    /**
     * Tokens [t0, t0 + tokens) of x [.., inDim] into xt as token tiles (see {@link Gemm#xt}); tokens up to padded are
     * zero. KC columns at a time go through a heap copy, so the transposing loop is plain array code.
     */
    private static void transpose(MemorySegment x, int t0, int tokens, int padded, int inDim, MemorySegment xt, float[] stage) {
        for (int tile = 0; tile < padded; tile += TW) {
            int width = Math.min(TW, padded - tile);
            int real = Math.min(width, tokens - tile); // the rest of the tile is zero padding
            for (int k0 = 0; k0 < inDim; k0 += KC) {
                int kc = Math.min(KC, inDim - k0);
                for (int j = 0; j < real; j++) {
                    MemorySegment.copy(x, F32, ((long) (t0 + tile + j) * inDim + k0) * 4, stage, j * KC, kc);
                }
                int at = tile * inDim + k0 * width;
                for (int k = 0; k < kc; k++, at += width) {
                    for (int j = 0; j < real; j++) {
                        xt.setAtIndex(F32, at + j, stage[j * KC + k]);
                    }
                    for (int j = real; j < width; j++) {
                        xt.setAtIndex(F32, at + j, 0f);
                    }
                }
            }
        }
    }

    /**
     * The micro-kernel: acc[j * NC + c + t] += sum over k < kc of panel[p + j * kc + k] * xt[xo + k * TW + t], for six
     * rows j and the TW tokens t of one tile. The sum over this k block starts from zero (short sums round better).
     */
    private static void kernel6x2(float[] panel, int p, int kc, MemorySegment xt, int xo, float[] acc, int c) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
        FloatVector a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
        for (int k = 0; k < kc; k++) {
            FloatVector x0 = FloatVector.fromMemorySegment(F, xt, (xo + (long) k * TW) * 4, NATIVE);
            FloatVector x1 = FloatVector.fromMemorySegment(F, xt, (xo + (long) k * TW + F.length()) * 4, NATIVE);
            FloatVector w = FloatVector.broadcast(F, panel[p + k]);
            a00 = x0.fma(w, a00);
            a01 = x1.fma(w, a01);
            w = FloatVector.broadcast(F, panel[p + kc + k]);
            a10 = x0.fma(w, a10);
            a11 = x1.fma(w, a11);
            w = FloatVector.broadcast(F, panel[p + 2 * kc + k]);
            a20 = x0.fma(w, a20);
            a21 = x1.fma(w, a21);
            w = FloatVector.broadcast(F, panel[p + 3 * kc + k]);
            a30 = x0.fma(w, a30);
            a31 = x1.fma(w, a31);
            w = FloatVector.broadcast(F, panel[p + 4 * kc + k]);
            a40 = x0.fma(w, a40);
            a41 = x1.fma(w, a41);
            w = FloatVector.broadcast(F, panel[p + 5 * kc + k]);
            a50 = x0.fma(w, a50);
            a51 = x1.fma(w, a51);
        }
        int h = F.length();
        addInto(acc, c, a00);
        addInto(acc, c + h, a01);
        addInto(acc, c + NC, a10);
        addInto(acc, c + NC + h, a11);
        addInto(acc, c + 2 * NC, a20);
        addInto(acc, c + 2 * NC + h, a21);
        addInto(acc, c + 3 * NC, a30);
        addInto(acc, c + 3 * NC + h, a31);
        addInto(acc, c + 4 * NC, a40);
        addInto(acc, c + 4 * NC + h, a41);
        addInto(acc, c + 5 * NC, a50);
        addInto(acc, c + 5 * NC + h, a51);
    }

    /** {@link #kernel6x2} for a last tile of one vector of tokens (xt rows of F.length()). */
    private static void kernel6x1(float[] panel, int p, int kc, MemorySegment xt, int xo, float[] acc, int c) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        for (int k = 0; k < kc; k++) {
            FloatVector x0 = FloatVector.fromMemorySegment(F, xt, (xo + (long) k * F.length()) * 4, NATIVE);
            a0 = x0.fma(FloatVector.broadcast(F, panel[p + k]), a0);
            a1 = x0.fma(FloatVector.broadcast(F, panel[p + kc + k]), a1);
            a2 = x0.fma(FloatVector.broadcast(F, panel[p + 2 * kc + k]), a2);
            a3 = x0.fma(FloatVector.broadcast(F, panel[p + 3 * kc + k]), a3);
            a4 = x0.fma(FloatVector.broadcast(F, panel[p + 4 * kc + k]), a4);
            a5 = x0.fma(FloatVector.broadcast(F, panel[p + 5 * kc + k]), a5);
        }
        addInto(acc, c, a0);
        addInto(acc, c + NC, a1);
        addInto(acc, c + 2 * NC, a2);
        addInto(acc, c + 3 * NC, a3);
        addInto(acc, c + 4 * NC, a4);
        addInto(acc, c + 5 * NC, a5);
    }

    private static void addInto(float[] a, int i, FloatVector v) {
        FloatVector.fromArray(F, a, i).add(v).intoArray(a, i);
    }

    /** Decode: out[r] = w[r] . x for one token, four rows per pass, weights widened in registers. */
    private static void matvec(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                               int inDim, int rowStart, int rowEnd) {
        boolean bf16 = type == WeightType.BF16;
        long rowBytes = (long) inDim * (bf16 ? 2 : 4);
        int upper = F.loopBound(inDim);
        int r = rowStart;
        for (; r + ROWS <= rowEnd; r += ROWS) {
            long b0 = r * rowBytes, b1 = b0 + rowBytes, b2 = b1 + rowBytes, b3 = b2 + rowBytes;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            int i = 0;
            if (bf16) {
                for (; i < upper; i += F.length()) {
                    FloatVector xv = FloatVector.fromMemorySegment(F, x, i * 4L, NATIVE);
                    a0 = bf16(w, b0 + i * 2L).fma(xv, a0);
                    a1 = bf16(w, b1 + i * 2L).fma(xv, a1);
                    a2 = bf16(w, b2 + i * 2L).fma(xv, a2);
                    a3 = bf16(w, b3 + i * 2L).fma(xv, a3);
                }
            } else {
                for (; i < upper; i += F.length()) {
                    FloatVector xv = FloatVector.fromMemorySegment(F, x, i * 4L, NATIVE);
                    a0 = FloatVector.fromMemorySegment(F, w, b0 + i * 4L, LE).fma(xv, a0);
                    a1 = FloatVector.fromMemorySegment(F, w, b1 + i * 4L, LE).fma(xv, a1);
                    a2 = FloatVector.fromMemorySegment(F, w, b2 + i * 4L, LE).fma(xv, a2);
                    a3 = FloatVector.fromMemorySegment(F, w, b3 + i * 4L, LE).fma(xv, a3);
                }
            }
            float s0 = a0.reduceLanes(VectorOperators.ADD), s1 = a1.reduceLanes(VectorOperators.ADD);
            float s2 = a2.reduceLanes(VectorOperators.ADD), s3 = a3.reduceLanes(VectorOperators.ADD);
            for (; i < inDim; i++) {
                float xi = x.getAtIndex(F32, i);
                s0 += weight(type, w, (long) r * inDim + i) * xi;
                s1 += weight(type, w, (long) (r + 1) * inDim + i) * xi;
                s2 += weight(type, w, (long) (r + 2) * inDim + i) * xi;
                s3 += weight(type, w, (long) (r + 3) * inDim + i) * xi;
            }
            out.setAtIndex(F32, r, s0);
            out.setAtIndex(F32, r + 1, s1);
            out.setAtIndex(F32, r + 2, s2);
            out.setAtIndex(F32, r + 3, s3);
        }
        for (; r < rowEnd; r++) {
            long base = (long) r * inDim;
            FloatVector acc = FloatVector.zero(F);
            int i = 0;
            for (; i < upper; i += F.length()) {
                FloatVector xv = FloatVector.fromMemorySegment(F, x, i * 4L, NATIVE);
                FloatVector wv = bf16 ? bf16(w, (base + i) * 2L) : FloatVector.fromMemorySegment(F, w, (base + i) * 4L, LE);
                acc = wv.fma(xv, acc);
            }
            float s = acc.reduceLanes(VectorOperators.ADD);
            for (; i < inDim; i++) {
                s += weight(type, w, base + i) * x.getAtIndex(F32, i);
            }
            out.setAtIndex(F32, r, s);
        }
    }

    /** F.length() BF16 values at byte offset off, widened to f32 (bf16 is the top half of an f32). */
    private static FloatVector bf16(MemorySegment w, long off) {
        ShortVector bits = ShortVector.fromMemorySegment(S, w, off, LE);
        IntVector wide = (IntVector) bits.convertShape(VectorOperators.S2I, I, 0);
        return wide.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** Weight number {@code index} (element, not byte) of a matrix in {@code type}, as f32. */
    static float weight(WeightType type, MemorySegment w, long index) {
        return switch (type) {
            case F32 -> w.getAtIndex(F32_LE, index);
            case BF16 -> Float.intBitsToFloat(w.getAtIndex(U16_LE, index) << 16);
            case F16 -> Float.float16ToFloat(w.getAtIndex(U16_LE, index));
            default -> throw new UnsupportedOperationException("the java backend does not read " + type + " weights yet");
        };
    }

    /** dst[dstOff, dstOff + n) = f32 of the n weights starting at element {@code first}. */
    private static void widenRow(WeightType type, MemorySegment w, long first, int n, float[] dst, int dstOff) {
        int i = 0;
        if (type == WeightType.BF16) {
            int upper = F.loopBound(n);
            for (; i < upper; i += F.length()) {
                bf16(w, (first + i) * 2L).intoArray(dst, dstOff + i);
            }
        } else if (type == WeightType.F32) {
            int upper = F.loopBound(n);
            for (; i < upper; i += F.length()) {
                FloatVector.fromMemorySegment(F, w, (first + i) * 4L, LE).intoArray(dst, dstOff + i);
            }
        }
        for (; i < n; i++) {
            dst[dstOff + i] = weight(type, w, first + i);
        }
    }

    /** Dot product of two f32 vectors in segments (element offsets). */
    private static float dot(MemorySegment a, long aOff, MemorySegment b, long bOff, int n) {
        FloatVector acc = FloatVector.zero(F);
        int upper = F.loopBound(n);
        int i = 0;
        for (; i < upper; i += F.length()) {
            acc = FloatVector.fromMemorySegment(F, a, (aOff + i) * 4L, NATIVE)
                    .fma(FloatVector.fromMemorySegment(F, b, (bOff + i) * 4L, NATIVE), acc);
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += a.getAtIndex(F32, aOff + i) * b.getAtIndex(F32, bOff + i);
        }
        return s;
    }

    /** y[yOff + i] += p * v[vOff + i] for i < n. */
    private static void axpy(float p, MemorySegment v, long vOff, MemorySegment y, long yOff, int n) {
        FloatVector pv = FloatVector.broadcast(F, p);
        int upper = F.loopBound(n);
        int i = 0;
        for (; i < upper; i += F.length()) {
            FloatVector yv = FloatVector.fromMemorySegment(F, y, (yOff + i) * 4L, NATIVE);
            FloatVector.fromMemorySegment(F, v, (vOff + i) * 4L, NATIVE).fma(pv, yv)
                    .intoMemorySegment(y, (yOff + i) * 4L, NATIVE);
        }
        for (; i < n; i++) {
            y.setAtIndex(F32, yOff + i, y.getAtIndex(F32, yOff + i) + p * v.getAtIndex(F32, vOff + i));
        }
    }

    // ---------------------------------------------------------------------------------------------- quantized

    /** Per-thread Q8_0 copy of the activations: int8 values as shorts [tokens * inDim], block scales [tokens * inDim / 32]. */
    private static final ThreadLocal<short[]> X_QUANTS = ThreadLocal.withInitial(() -> new short[0]);
    private static final ThreadLocal<float[]> X_SCALES = ThreadLocal.withInitial(() -> new float[0]);
    /** Rows of a quantized matrix kept hot (L1/L2) while every token of a prefill passes over them. */
    private static final int Q_ROW_TILE = 16;
    /** Integer dot products need 256-bit shorts (16 lanes); narrower machines take the scalar loop. */
    private static final boolean Q_VECTOR = F.vectorBitSize() >= 256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;

    /**
     * Q8_0 / Q4_0 weights, like llama.cpp: each token's activations are quantized to Q8_0 blocks, every block pair is
     * an exact integer dot product, scaled by (weight scale x activation scale) and summed in f32. Two rows go at
     * once, sharing each activation block; a prefill runs every token over a tile of rows while it is in cache.
     */
    private static void matmulQuantized(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                                        int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        int blocks = inDim / Quant.BLOCK;
        if (blocks * Quant.BLOCK != inDim) {
            throw new IllegalArgumentException(type + " rows need a multiple of 32 weights, got " + inDim);
        }
        short[] xq = X_QUANTS.get();
        float[] xs = X_SCALES.get();
        if (xq.length < tokens * inDim) {
            xq = new short[tokens * inDim];
            xs = new float[tokens * blocks];
            X_QUANTS.set(xq);
            X_SCALES.set(xs);
        }
        for (int t = 0; t < tokens; t++) {
            Quant.quantizeActivations(x, (long) t * inDim, inDim, xq, t * inDim, xs, t * blocks);
        }
        long rowBytes = type.rowBytes(inDim);
        boolean q8 = type == WeightType.Q8_0;
        for (int r0 = rowStart; r0 < rowEnd; r0 += Q_ROW_TILE) {
            int r1 = Math.min(rowEnd, r0 + Q_ROW_TILE);
            for (int t = 0; t < tokens; t++) {
                long o = (long) t * outStride;
                int r = r0;
                if (Q_VECTOR) {
                    for (; r + 2 <= r1; r += 2) {
                        if (q8) dot2RowsQ8_0(w, r * rowBytes, rowBytes, xq, xs, t * inDim, t * blocks, blocks, out, o + r);
                        else dot2RowsQ4_0(w, r * rowBytes, rowBytes, xq, xs, t * inDim, t * blocks, blocks, out, o + r);
                    }
                }
                for (; r < r1; r++) { // an odd last row (the model's matrices have none), or no 256-bit vectors
                    out.setAtIndex(F32, o + r, dotScalar(type, w, r * rowBytes, xq, xs, t * inDim, t * blocks, blocks));
                }
            }
        }
    }

    /**
     * Two rows from byte {@code row} (rowBytes apart) . one token's quantized activations, into out[o, o + 2).
     * Straight-line code without helper calls, one method per format, two rows not four: C2 must inline every Vector
     * API call to keep the vectors in registers; past its inlining budget it boxes them and runs 10x slower.
     */
    private static void dot2RowsQ8_0(MemorySegment w, long row, long rowBytes, short[] xq, float[] xs,
                                     int xOff, int sOff, int blocks, MemorySegment out, long o) {
        FloatVector acc0 = FloatVector.zero(F256), acc1 = acc0;
        for (int b = 0; b < blocks; b++) {
            int xi = xOff + b * Quant.BLOCK;
            ShortVector x0 = ShortVector.fromArray(S256, xq, xi), x1 = ShortVector.fromArray(S256, xq, xi + 16);
            float dx = xs[sOff + b];
            long at0 = row + b * 34L, at1 = at0 + rowBytes;
            ShortVector a0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, at0 + 2, LE).convertShape(VectorOperators.B2S, S256, 0);
            ShortVector a1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, at0 + 18, LE).convertShape(VectorOperators.B2S, S256, 0);
            ShortVector p0 = a0.mul(x0).add(a1.mul(x1)); // |lane| <= 2 * 128 * 127: no overflow
            ShortVector b0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, at1 + 2, LE).convertShape(VectorOperators.B2S, S256, 0);
            ShortVector b1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, at1 + 18, LE).convertShape(VectorOperators.B2S, S256, 0);
            ShortVector p1 = b0.mul(x0).add(b1.mul(x1));
            IntVector i0 = ((IntVector) p0.convertShape(VectorOperators.S2I, I256, 0)).add(p0.convertShape(VectorOperators.S2I, I256, 1));
            IntVector i1 = ((IntVector) p1.convertShape(VectorOperators.S2I, I256, 0)).add(p1.convertShape(VectorOperators.S2I, I256, 1));
            acc0 = ((FloatVector) i0.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F256, Float.float16ToFloat(w.get(U16_LE, at0)) * dx), acc0);
            acc1 = ((FloatVector) i1.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F256, Float.float16ToFloat(w.get(U16_LE, at1)) * dx), acc1);
        }
        out.setAtIndex(F32, o, acc0.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, o + 1, acc1.reduceLanes(VectorOperators.ADD));
    }

    /** The same for Q4_0: byte j holds element j (low nibble) and element j + 16 (high nibble), weight = nibble - 8. */
    private static void dot2RowsQ4_0(MemorySegment w, long row, long rowBytes, short[] xq, float[] xs,
                                     int xOff, int sOff, int blocks, MemorySegment out, long o) {
        FloatVector acc0 = FloatVector.zero(F256), acc1 = acc0;
        for (int b = 0; b < blocks; b++) {
            int xi = xOff + b * Quant.BLOCK;
            ShortVector x0 = ShortVector.fromArray(S256, xq, xi), x1 = ShortVector.fromArray(S256, xq, xi + 16);
            float dx = xs[sOff + b];
            long at0 = row + b * 18L, at1 = at0 + rowBytes;
            ShortVector n0 = (ShortVector) ByteVector.fromMemorySegment(B128, w, at0 + 2, LE).convertShape(VectorOperators.B2S, S256, 0);
            ShortVector n1 = (ShortVector) ByteVector.fromMemorySegment(B128, w, at1 + 2, LE).convertShape(VectorOperators.B2S, S256, 0);
            // nibbles on shorts: (n & 15) - 8 and ((n >> 4) & 15) - 8 (the sign-extended high bits are masked off)
            ShortVector p0 = n0.and((short) 15).sub((short) 8).mul(x0)
                    .add(n0.lanewise(VectorOperators.ASHR, 4).and((short) 15).sub((short) 8).mul(x1));
            ShortVector p1 = n1.and((short) 15).sub((short) 8).mul(x0)
                    .add(n1.lanewise(VectorOperators.ASHR, 4).and((short) 15).sub((short) 8).mul(x1));
            IntVector i0 = ((IntVector) p0.convertShape(VectorOperators.S2I, I256, 0)).add(p0.convertShape(VectorOperators.S2I, I256, 1));
            IntVector i1 = ((IntVector) p1.convertShape(VectorOperators.S2I, I256, 0)).add(p1.convertShape(VectorOperators.S2I, I256, 1));
            acc0 = ((FloatVector) i0.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F256, Float.float16ToFloat(w.get(U16_LE, at0)) * dx), acc0);
            acc1 = ((FloatVector) i1.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F256, Float.float16ToFloat(w.get(U16_LE, at1)) * dx), acc1);
        }
        out.setAtIndex(F32, o, acc0.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, o + 1, acc1.reduceLanes(VectorOperators.ADD));
    }

    /** The plain-loop version of the block dot products (no vectors). */
    static float dotScalar(WeightType type, MemorySegment w, long row, short[] xq, float[] xs, int xOff, int sOff, int blocks) {
        float sum = 0;
        for (int b = 0; b < blocks; b++) {
            long at = row + (long) b * type.blockBytes;
            int xi = xOff + b * Quant.BLOCK;
            int dot = 0;
            if (type == WeightType.Q8_0) {
                for (int j = 0; j < Quant.BLOCK; j++) dot += w.get(ValueLayout.JAVA_BYTE, at + 2 + j) * xq[xi + j];
            } else {
                for (int j = 0; j < Quant.BLOCK / 2; j++) {
                    int q = w.get(ValueLayout.JAVA_BYTE, at + 2 + j) & 0xFF;
                    dot += ((q & 0x0F) - 8) * xq[xi + j] + ((q >>> 4) - 8) * xq[xi + j + Quant.BLOCK / 2];
                }
            }
            sum += dot * (Float.float16ToFloat(w.get(U16_LE, at)) * xs[sOff + b]);
        }
        return sum;
    }

    // ---------------------------------------------------------------------------------------------- small ops

    @Override
    public void embed(WeightType type, MemorySegment table, long row, int dim, MemorySegment out) {
        if (type.quantized()) {
            Quant.dequantizeRowInto(type, table, row, dim, out);
            return;
        }
        for (int i = 0; i < dim; i++) {
            out.setAtIndex(F32, i, weight(type, table, row * dim + i));
        }
    }

    @Override
    public void layerNorm(MemorySegment x, MemorySegment weight, MemorySegment out, int tokens, int dim, float eps) {
        for (int t = 0; t < tokens; t++) {
            long base = (long) t * dim;
            double sum = 0;
            for (int i = 0; i < dim; i++) {
                sum += x.getAtIndex(F32, base + i);
            }
            float mean = (float) (sum / dim);
            double sq = 0;
            for (int i = 0; i < dim; i++) {
                float d = x.getAtIndex(F32, base + i) - mean;
                sq += d * d;
            }
            float var = (float) (sq / dim); // biased variance, like torch's mean of squares
            float inv = (float) (1.0 / Math.sqrt(var + eps));
            for (int i = 0; i < dim; i++) {
                float v = (x.getAtIndex(F32, base + i) - mean) * inv;
                out.setAtIndex(F32, base + i, weight.getAtIndex(F32, i) * v);
            }
        }
    }

    @Override
    public void ropeInterleaved(MemorySegment vec, int tokens, int heads, int headDim, int pos0,
                                MemorySegment cos, MemorySegment sin) {
        int half = headDim / 2;
        for (int t = 0; t < tokens; t++) {
            long table = (long) (pos0 + t) * half;
            for (int h = 0; h < heads; h++) {
                long base = ((long) t * heads + h) * headDim;
                for (int i = 0; i < half; i++) {
                    float c = cos.getAtIndex(F32, table + i);
                    float s = sin.getAtIndex(F32, table + i);
                    float a = vec.getAtIndex(F32, base + 2 * i);
                    float b = vec.getAtIndex(F32, base + 2 * i + 1);
                    vec.setAtIndex(F32, base + 2 * i, a * c - b * s);
                    vec.setAtIndex(F32, base + 2 * i + 1, b * c + a * s);
                }
            }
        }
    }

    @Override
    public void attention(MemorySegment q, MemorySegment kCache, MemorySegment vCache, MemorySegment out,
                          int tokens, int pos0, int heads, int kvHeads, int headDim, int capacity, int window,
                          float scale, MemorySegment scratch, int itemStart, int itemEnd) {
        int group = heads / kvHeads;
        int kvDim = kvHeads * headDim;
        for (int item = itemStart; item < itemEnd; ) {
            int t = item / heads;
            int h = item % heads;
            int kvHead = h / group;
            // GQA: the query heads of this token that share kvHead (and are in our slice) go together, so each
            // cached key and value row is read from memory once for all of them instead of once per head.
            int run = Math.min((kvHead + 1) * group - h, itemEnd - item);
            int pos = pos0 + t;
            int first = window == 0 ? 0 : Math.max(0, pos - window + 1);
            int count = pos - first + 1;
            long kvOff = (long) kvHead * headDim;
            float[] p = scores(run * count); // p[j * count + (k - first)]: scores, then probabilities, of query j
            for (int k = first; k <= pos; k++) {
                long kRow = (k % capacity) * kvDim + kvOff;
                for (int j = 0; j < run; j++) {
                    p[j * count + k - first] = dot(q, (long) (item + j) * headDim, kCache, kRow, headDim) * scale;
                }
            }
            for (int j = 0; j < run; j++) {
                softmax(p, j * count, count);
                out.asSlice((long) (item + j) * headDim * 4, headDim * 4L).fill((byte) 0);
            }
            for (int k = first; k <= pos; k++) {
                long vRow = (k % capacity) * kvDim + kvOff;
                for (int j = 0; j < run; j++) {
                    axpy(p[j * count + k - first], vCache, vRow, out, (long) (item + j) * headDim, headDim);
                }
            }
            item += run;
        }
    }

    /** Per-thread attention scores (heap, grown on demand: a GQA group needs group x keys floats). */
    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[0]);

    private static float[] scores(int n) {
        float[] p = SCORES.get();
        if (p.length < n) {
            p = new float[Math.max(n, 2 * p.length)];
            SCORES.set(p);
        }
        return p;
    }

    /** Softmax in place over p[off, off + n), max-subtracted, in f32. */
    private static void softmax(float[] p, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = off; i < off + n; i++) {
            max = Math.max(max, p[i]);
        }
        float sum = 0;
        for (int i = off; i < off + n; i++) {
            float e = (float) Math.exp(p[i] - max);
            p[i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = off; i < off + n; i++) {
            p[i] *= inv;
        }
    }

    @Override
    public void swiglu(MemorySegment gate, MemorySegment up, long start, long end) {
        long i = start;
        // EXP is the JDK's vector exp (SVML on x86, within 1 ulp): the same formula as the scalar tail below
        for (; i + F.length() <= end; i += F.length()) {
            FloatVector g = FloatVector.fromMemorySegment(F, gate, i * 4, NATIVE);
            FloatVector e = g.neg().lanewise(VectorOperators.EXP);
            g.div(e.add(1f)).mul(FloatVector.fromMemorySegment(F, up, i * 4, NATIVE)).intoMemorySegment(gate, i * 4, NATIVE);
        }
        for (; i < end; i++) {
            float g = gate.getAtIndex(F32, i);
            float silu = g / (1f + (float) Math.exp(-g));
            gate.setAtIndex(F32, i, silu * up.getAtIndex(F32, i));
        }
    }

    @Override
    public void softmax(MemorySegment x, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x.getAtIndex(F32, i));
        }
        float sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x.getAtIndex(F32, i) - max);
            x.setAtIndex(F32, i, e);
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) {
            x.setAtIndex(F32, i, x.getAtIndex(F32, i) * inv);
        }
    }

    // ---------------------------------------------------------------------------------------------- bf16 activations

    /** Per-thread copy of the activations rounded to bf16 (as f32 values; a byte[] because the Vector API reads those). */
    private static final ThreadLocal<byte[]> BF16_ROUNDED = ThreadLocal.withInitial(() -> new byte[0]);

    /**
     * The activations rounded to bf16, then the ordinary f32 path: the same numerics as the native code without
     * AVX512_BF16 (products of two bf16 values are exact in f32, so only the order of the sums differs).
     */
    @Override
    public void matmulBf16Activations(MemorySegment w, MemorySegment x, MemorySegment out,
                                      int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        long n = (long) tokens * inDim;
        if (n > Integer.MAX_VALUE / Float.BYTES) {
            throw new IllegalArgumentException("matmulBf16Activations: " + n + " activations is too many");
        }
        byte[] buffer = BF16_ROUNDED.get();
        if (buffer.length < n * Float.BYTES) {
            buffer = new byte[(int) n * Float.BYTES];
            BF16_ROUNDED.set(buffer);
        }
        MemorySegment rounded = MemorySegment.ofArray(buffer);
        for (long i = 0; i < n; i++) {
            rounded.setAtIndex(F32, i, roundToBf16(x.getAtIndex(F32, i)));
        }
        matmul(WeightType.BF16, w, rounded, out, tokens, inDim, outStride, rowStart, rowEnd);
    }

    /**
     * v rounded to the nearest bf16 (ties to even) as x86's vcvtne2ps2bf16 does: NaN stays NaN (made quiet), f32
     * denormals become zero of the same sign, overflow gives infinity.
     */
    public static float roundToBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        int magnitude = bits & 0x7fffffff;
        int bf16;
        if (magnitude > 0x7f800000) {
            bf16 = (bits >>> 16) | 0x40;
        } else if (magnitude < 0x00800000) {
            bf16 = (bits >>> 16) & 0x8000;
        } else {
            bf16 = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
        }
        return Float.intBitsToFloat(bf16 << 16);
    }
}
