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
    // output in twelve vector registers (two such blocks in 24 with AVX-512's 32: PAIRS) while it walks k, broadcasting
    // one f32 weight per row and loading one vector of x per half tile. The weights need no transpose: each block of rows is widened to f32 row by row.
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

    // Same input, same bits, whichever JIT tier runs a kernel: the interpreter and C1 run the Vector API's Java
    // fallbacks, C2 its intrinsics, and two operations round differently in them. reduceLanes(ADD) on floats adds lane
    // by lane in the fallback but as a tree in C2's x86 intrinsic, so the kernels take their horizontal sums with sum
    // below (JitTierTest). lanewise(EXP) is Math.exp per lane in the fallback but SVML in C2 (another rounding in ~4%
    // of lanes): softmax and swiglu still depend on the tier, as Math.exp there cost 6-10x (docs/kernels.md, "Determinism").

    /**
     * The sum of one vector's lanes, stored at lanes[from, from + F.length()) by intoArray: halves folded onto each
     * other (lane i + lane i + n/2, then the same on the n/2 sums, down to one: C2's x86 order for reduceLanes(ADD),
     * so compiled kernels keep their bits on x86). Scalar Java, strict in every tier; a vector never crosses a call
     * (one not inlined would be boxed). Overwrites lanes.
     */
    static float sum(float[] lanes, int from) {
        for (int w = F.length() / 2; w > 0; w /= 2) {
            for (int i = from; i < from + w; i++) {
                lanes[i] += lanes[i + w];
            }
        }
        return lanes[from];
    }

    /**
     * x's token tiles: the tile of token t0 at t0 * inDim, laid out [inDim][tile width]. Off-heap and 64-byte aligned:
     * in a float[] the vector loads' alignment depends on where the GC put the array, and with ParallelGC (the
     * launcher's) cache-line-splitting loads halved the micro-kernel's speed.
     */
    private static final class Tiles {
        private Arena arena;
        MemorySegment segment = MemorySegment.NULL;

        /** Room for bytes of tiles (the old ones are freed now, not whenever the GC runs). */
        void grow(long bytes) {
            if (segment.byteSize() < bytes) {
                free();
                arena = Arena.ofShared();
                segment = arena.allocate(bytes, 64);
            }
        }

        void free() {
            if (arena != null) arena.close();
            arena = null;
            segment = MemorySegment.NULL;
        }
    }

    /** Buffers of one GEMM call, reused by later calls (x's grows to the largest inDim seen). */
    private static final class Gemm {
        /** Up to NC tokens of x in token tiles. */
        final Tiles xt = new Tiles();
        /** MC rows of w in f32, by k blocks: block k0 at k0 * MC, its row j at + j * kc. */
        float[] panel = new float[0];
        /** TW tokens x KC columns of x on their way into xt. */
        final float[] stage = new float[TW * KC];
        /** The output of the current MC rows for the current tokens, summed over k blocks: [MC][NC]. */
        final float[] acc = new float[MC * NC];

        /**
         * Room for inDim inputs: the panel, and with ownTiles NC tokens of x; a call whose x {@link #shareInput}
         * transposed needs no tiles of its own.
         */
        void grow(int inDim, boolean ownTiles) {
            if (ownTiles) xt.grow(4L * NC * inDim);
            if (panel.length < MC * Math.min(inDim, KR)) {
                panel = new float[MC * Math.min(inDim, KR)];
            }
        }
    }

    /**
     * GEMM scratch, one per call in flight: a call takes one and puts it back. So the memory is bounded by the threads
     * computing at once (not by every thread that ever ran a prefill, as a ThreadLocal would be: a server making a
     * thread per request would pile up off-heap tiles until the GC noticed), and {@link #close} frees it.
     */
    private final java.util.concurrent.ConcurrentLinkedDeque<Gemm> gemmScratch = new java.util.concurrent.ConcurrentLinkedDeque<>();
    private volatile boolean closed;

    /**
     * An x that {@link #shareInput} prepared once for every GEMM call of a job: transposed into token tiles (layout of
     * {@link Tiles}) for the f32 GEMM, quantized for {@link NibbleGemm}, or both, as the job's matrices read it.
     */
    private static final class SharedTiles {
        final Tiles xt = new Tiles();
        final NibbleGemm.Quantized quantized = new NibbleGemm.Quantized();
        /** What they hold while shared. */
        MemorySegment x;
        int tokens, inDim;
        boolean roundX, transposed, quantizedX;
    }

    /** The tiles shared now, read by every GEMM call (copy on write: it changes twice per shared job). */
    private volatile SharedTiles[] shared = new SharedTiles[0];
    /** Per thread: a heap copy of a block of x, for {@link #shareInput}'s jobs ({@link #transposeBlock}) and the decode's bf16 rounding. */
    private static final ThreadLocal<float[]> SHARE_STAGE = ThreadLocal.withInitial(() -> new float[TW * KC]);
    /** Tiles of closed shares, for the next ones. */
    private final java.util.concurrent.ConcurrentLinkedDeque<SharedTiles> spareTiles = new java.util.concurrent.ConcurrentLinkedDeque<>();

    @Override
    public String name() {
        return "java (" + F.vectorBitSize() + "-bit vectors)";
    }

    // ---------------------------------------------------------------------------------------------- matmul

    @Override
    public void matmul(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                       int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        if (type.quantized()) {
            if (type != WeightType.Q8_0 && type != WeightType.Q4_0 && !KQuant.handles(type)) {
                throw new UnsupportedOperationException("the java backend does not read " + type + " weights yet");
            }
            type.rowBytes(inDim); // rejects rows that are not whole blocks
        }
        if (tokens < GEMM_MIN_TOKENS && type != WeightType.F16) {
            for (int t = 0; t < tokens; t++) {
                MemorySegment xt = x.asSlice((long) t * inDim * 4), outT = out.asSlice((long) t * outStride * 4);
                if (KQuant.handles(type)) KQuant.matvec(type, w, xt, outT, inDim, rowStart, rowEnd);
                else if (type.quantized()) matvecQuantized(type, w, xt, outT, inDim, rowStart, rowEnd);
                else matvec(type, w, xt, outT, inDim, rowStart, rowEnd);
            }
            return;
        }
        gemm(fileRows(type, w, inDim), x, false, out, tokens, inDim, outStride, rowStart, rowEnd);
    }

    /** The rows of a matrix read in its file's layout, widened to f32 for the GEMM. */
    private static GemmRows fileRows(WeightType type, MemorySegment w, int inDim) {
        return (row, col, n, dst, dstOff) -> widenRow(type, w, (long) row * inDim + col, n, dst, dstOff);
    }

    /**
     * Prefill: out = w x for tokens >= GEMM_MIN_TOKENS, NC tokens per pass, through GEMM scratch of this backend;
     * with roundX, x is rounded to bf16 on its way into the token tiles (--activations bf16).
     */
    private void gemm(GemmRows w, MemorySegment x, boolean roundX, MemorySegment out,
                      int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        SharedTiles share = sharedFor(x, tokens, inDim, false, roundX);
        MemorySegment sharedXt = share != null ? share.xt.segment : null;
        Gemm g = gemmScratch.pollFirst();
        if (g == null) g = new Gemm();
        try {
            g.grow(inDim, sharedXt == null);
            for (int t0 = 0; t0 < tokens; t0 += NC) {
                int chunk = Math.min(NC, tokens - t0);
                MemorySegment xt = g.xt.segment;
                if (sharedXt != null) { // the shared tiles of token t0 start at t0 * inDim, as in a pass of their own
                    xt = sharedXt.asSlice(4L * t0 * inDim);
                } else {
                    transpose(x, roundX, t0, chunk, paddedTokens(chunk), inDim, xt, g.stage);
                }
                gemm(w, xt, out, t0, chunk, inDim, outStride, rowStart, rowEnd, g);
            }
        } finally {
            if (closed) {
                g.xt.free();
            } else {
                gemmScratch.offerFirst(g); // the most recently used one first: its tiles are the warmest
            }
        }
    }

    // ---------------------------------------------------------------------------------------------- packed matrices

    @Override
    public PackedMatrix pack(WeightType type, MemorySegment w, int rows, int cols, Parallel pool) {
        return switch (type) {
            case Q6_K -> PackedQ6KInt8.PACKS ? PackedQ6KInt8.pack(w, rows, cols, pool) // 8 lanes: a byte per weight
                    : PackedQ6K.VECTOR ? PackedQ6K.pack(w, rows, cols, pool) : null; // else the file's layout
            case Q4_0, Q4_K -> PackedNibbles.pack(type, w, rows, cols, pool);
            case Q8_0 -> PackedQ8.PACKS ? PackedQ8.pack(w, rows, cols, pool) : null; // 16 lanes: the file's layout
            default -> null; // read in the file's layout
        };
    }

    @Override
    public void matmul(PackedMatrix w, MemorySegment x, MemorySegment out,
                       int tokens, int outStride, int rowStart, int rowEnd) {
        if (!(w instanceof JavaPackedMatrix p)) {
            throw new IllegalArgumentException(w + " was not packed by the java backend");
        }
        if (tokens < GEMM_MIN_TOKENS) {
            for (int t = 0; t < tokens; t++) {
                p.matvec(x.asSlice((long) t * p.cols() * 4), out.asSlice((long) t * outStride * 4), rowStart, rowEnd);
            }
        } else if (takesNibbleGemm(p, tokens)) { // the 4-bit formats in 16-bit lanes
            SharedTiles share = sharedFor(x, tokens, p.cols(), true, false);
            NibbleGemm.matmul((PackedNibbles) p, x, out, tokens, outStride, rowStart, rowEnd, share != null ? share.quantized : null);
        } else {
            gemm(p, x, false, out, tokens, p.cols(), outStride, rowStart, rowEnd);
        }
    }

    /**
     * A prefill job's pieces share x's prepared copy ({@link #shareInput}), so a piece costs only its rows: 8 per thread
     * leave ~1/16 of a job as the longest wait at its end instead of ~1/4 (docs/performance-java.md section 50).
     */
    @Override
    public int prefillPiecesPerThread() {
        return 8;
    }

    /**
     * Whether {@link #matmul(PackedMatrix, MemorySegment, MemorySegment, int, int, int, int)} takes w's product with
     * this many tokens through {@link NibbleGemm} (x read quantized) rather than the f32 GEMM (x read transposed): what
     * {@link #shareInput} prepares follows it.
     */
    private static boolean takesNibbleGemm(PackedMatrix w, int tokens) {
        return w instanceof PackedNibbles && NibbleGemm.uses(tokens);
    }

    @Override
    public SharedInput shareInput(MemorySegment x, int tokens, int inDim, boolean bf16, Parallel pool,
                                  PackedMatrix... readers) {
        if (tokens < GEMM_MIN_TOKENS || closed) {
            return SharedInput.NONE; // matrix-vector products read x as it is
        }
        boolean transpose = false, quantize = false; // which GEMMs the job's products take
        for (PackedMatrix m : readers) {
            if (takesNibbleGemm(m, tokens)) quantize = true;
            else transpose = true;
        }
        SharedTiles t = spareTiles.pollFirst();
        SharedTiles tiles = t != null ? t : new SharedTiles();
        if (transpose) {
            int padded = paddedTokens(tokens);
            tiles.xt.grow(4L * padded * inDim);
            // the same tiles as each call's transpose makes (tokens past NC are further tiles), one KC block per item
            int kBlocks = (inDim + KC - 1) / KC, items = (padded + TW - 1) / TW * kBlocks;
            pool.forRange(items, 1, (worker, from, to) -> {
                float[] stage = SHARE_STAGE.get();
                for (int i = from; i < to; i++) {
                    transposeBlock(x, bf16, 0, tokens, padded, inDim, tiles.xt.segment, stage, i / kBlocks * TW, i % kBlocks * KC);
                }
            });
        }
        if (quantize) { // one tile of tokens per item, as each NibbleGemm call would quantize them
            int quantTiles = (tokens + NibbleGemm.TT - 1) / NibbleGemm.TT;
            tiles.quantized.grow(quantTiles, inDim);
            pool.forRange(quantTiles, 1,
                    (worker, from, to) -> NibbleGemm.quantizeTiles(x, tokens, inDim, tiles.quantized, from, to));
        }
        tiles.transposed = transpose;
        tiles.quantizedX = quantize;
        tiles.x = x;
        tiles.tokens = tokens;
        tiles.inDim = inDim;
        tiles.roundX = bf16;
        synchronized (this) {
            SharedTiles[] now = Arrays.copyOf(shared, shared.length + 1);
            now[now.length - 1] = tiles;
            shared = now;
        }
        return () -> unshare(tiles);
    }

    /** Ends a share: the GEMM calls from now on transpose x themselves. */
    private void unshare(SharedTiles tiles) {
        synchronized (this) {
            SharedTiles[] now = Arrays.stream(shared).filter(t -> t != tiles).toArray(SharedTiles[]::new);
            if (now.length == shared.length) return; // closed twice
            shared = now;
        }
        tiles.x = null;
        if (closed) {
            tiles.xt.free();
        } else {
            spareTiles.offerFirst(tiles);
        }
    }

    /**
     * The share of x prepared for a call with these tokens and inDim: quantized for {@link NibbleGemm}, or transposed
     * with this rounding for the f32 GEMM; null if there is none.
     */
    private SharedTiles sharedFor(MemorySegment x, int tokens, int inDim, boolean quantized, boolean roundX) {
        for (SharedTiles t : shared) {
            // read once: another thread's share in this snapshot may end (x = null) while this call looks at it
            MemorySegment tx = t.x;
            boolean prepared = quantized ? t.quantizedX : t.transposed && t.roundX == roundX;
            if (prepared && tx != null && tx.equals(x) && t.tokens == tokens && t.inDim == inDim) {
                return t;
            }
        }
        return null;
    }

    /** Tokens rounded up to whole vectors: the tiles' zero padding. */
    private static int paddedTokens(int tokens) {
        return (tokens + F.length() - 1) / F.length() * F.length();
    }

    /** Off-heap bytes of one GEMM call's scratch for inputs of width inDim (x's token tiles). */
    public static long gemmScratchBytes(int inDim) {
        return 4L * NC * inDim;
    }

    /** Frees the GEMM scratch (calls still running keep theirs until they return it). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (Gemm g; (g = gemmScratch.pollFirst()) != null; ) g.xt.free();
        for (SharedTiles t; (t = spareTiles.pollFirst()) != null; ) t.xt.free();
    }

    /**
     * Prefill, tokens [t0, t0 + tokens) with tokens <= NC: for each block of MC rows, widen KR columns of them to f32
     * (row by row), then for each KC block of those run every token tile over it, RB rows at a time. Zero rows and zero tokens pad the last blocks
     * (their sums are never stored; zeros just keep those lanes finite).
     */
    private static void gemm(GemmRows w, MemorySegment xt, MemorySegment out, int t0, int tokens,
                             int inDim, int outStride, int rowStart, int rowEnd, Gemm g) {
        int padded = paddedTokens(tokens);
        float[] panel = g.panel, acc = g.acc;
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
                        w.widen(r0 + j, k0, kc, panel, (k0 - k1) * MC + j * kc);
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
                            if (width == TW && PAIRS && b + 1 < blocks) { // two blocks of RB rows at once
                                kernel12x2(panel, p + b * RB * kc, kc, xt, xo, acc, b * RB * NC + tile);
                                b++;
                            } else if (width == TW) {
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
     * Tokens [t0, t0 + tokens) of x [.., inDim] into xt as token tiles (see {@link Tiles}), each value rounded to
     * bf16 if roundX; tokens up to padded are zero. KC columns at a time go through a heap copy, so the transposing
     * loop is plain array code.
     */
    private static void transpose(MemorySegment x, boolean roundX, int t0, int tokens, int padded, int inDim,
                                  MemorySegment xt, float[] stage) {
        for (int tile = 0; tile < padded; tile += TW) {
            for (int k0 = 0; k0 < inDim; k0 += KC) {
                transposeBlock(x, roundX, t0, tokens, padded, inDim, xt, stage, tile, k0);
            }
        }
    }

    /** The part of {@link #transpose} for columns [k0, k0 + KC) of the tile of token t0 + tile. */
    private static void transposeBlock(MemorySegment x, boolean roundX, int t0, int tokens, int padded, int inDim,
                                       MemorySegment xt, float[] stage, int tile, int k0) {
        int width = Math.min(TW, padded - tile);
        int real = Math.min(width, tokens - tile); // the rest of the tile is zero padding
        int kc = Math.min(KC, inDim - k0);
        for (int j = 0; j < real; j++) {
            long from = (long) (t0 + tile + j) * inDim + k0;
            if (roundX) {
                roundToBf16(x, from, stage, j * KC, kc);
            } else {
                MemorySegment.copy(x, F32, from * 4, stage, j * KC, kc);
            }
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
        addInto2(acc, c, a00, a01);
        addInto2(acc, c + NC, a10, a11);
        addInto2(acc, c + 2 * NC, a20, a21);
        addInto2(acc, c + 3 * NC, a30, a31);
        addInto2(acc, c + 4 * NC, a40, a41);
        addInto2(acc, c + 5 * NC, a50, a51);
    }

    /**
     * Two blocks of RB rows per micro-kernel call where F has 16 lanes (AVX-512: 32 registers hold 24 accumulators,
     * two vectors of x and a broadcast): each vector of x loaded serves 12 FMAs instead of 6. With 8 lanes (16
     * registers) the micro-kernel stays {@link #kernel6x2}.
     */
    static final boolean PAIRS = F.length() >= 16;

    /**
     * {@link #kernel6x2} for rows j &lt; 12 (two blocks of RB, the second at panel offset p + RB * kc): each row's
     * sum is the same FMA chain as there, so the same bits. 2-4% faster than two kernel6x2 calls (docs/performance-java.md
     * section 37). The adds into acc are written out: through twelve {@link #addInto2} calls C2 stopped inlining after
     * the first few and boxed the accumulators (278 MB allocated per 512 x 2048 call, 20 GFLOP/s).
     */
    private static void kernel12x2(float[] panel, int p, int kc, MemorySegment xt, int xo, float[] acc, int c) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
        FloatVector a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
        FloatVector a60 = a00, a61 = a00, a70 = a00, a71 = a00, a80 = a00, a81 = a00;
        FloatVector a90 = a00, a91 = a00, aa0 = a00, aa1 = a00, ab0 = a00, ab1 = a00;
        for (int k = 0; k < kc; k++) {
            FloatVector x0 = FloatVector.fromMemorySegment(F, xt, (xo + (long) k * TW) * 4, NATIVE);
            FloatVector x1 = FloatVector.fromMemorySegment(F, xt, (xo + (long) k * TW + F.length()) * 4, NATIVE);
            FloatVector w = FloatVector.broadcast(F, panel[p + k]);
            a00 = x0.fma(w, a00); a01 = x1.fma(w, a01);
            w = FloatVector.broadcast(F, panel[p + kc + k]);
            a10 = x0.fma(w, a10); a11 = x1.fma(w, a11);
            w = FloatVector.broadcast(F, panel[p + 2 * kc + k]);
            a20 = x0.fma(w, a20); a21 = x1.fma(w, a21);
            w = FloatVector.broadcast(F, panel[p + 3 * kc + k]);
            a30 = x0.fma(w, a30); a31 = x1.fma(w, a31);
            w = FloatVector.broadcast(F, panel[p + 4 * kc + k]);
            a40 = x0.fma(w, a40); a41 = x1.fma(w, a41);
            w = FloatVector.broadcast(F, panel[p + 5 * kc + k]);
            a50 = x0.fma(w, a50); a51 = x1.fma(w, a51);
            w = FloatVector.broadcast(F, panel[p + 6 * kc + k]);
            a60 = x0.fma(w, a60); a61 = x1.fma(w, a61);
            w = FloatVector.broadcast(F, panel[p + 7 * kc + k]);
            a70 = x0.fma(w, a70); a71 = x1.fma(w, a71);
            w = FloatVector.broadcast(F, panel[p + 8 * kc + k]);
            a80 = x0.fma(w, a80); a81 = x1.fma(w, a81);
            w = FloatVector.broadcast(F, panel[p + 9 * kc + k]);
            a90 = x0.fma(w, a90); a91 = x1.fma(w, a91);
            w = FloatVector.broadcast(F, panel[p + 10 * kc + k]);
            aa0 = x0.fma(w, aa0); aa1 = x1.fma(w, aa1);
            w = FloatVector.broadcast(F, panel[p + 11 * kc + k]);
            ab0 = x0.fma(w, ab0); ab1 = x1.fma(w, ab1);
        }
        FloatVector.fromArray(F, acc, c).add(a00).intoArray(acc, c);
        FloatVector.fromArray(F, acc, c + F.length()).add(a01).intoArray(acc, c + F.length());
        FloatVector.fromArray(F, acc, c + NC).add(a10).intoArray(acc, c + NC);
        FloatVector.fromArray(F, acc, c + NC + F.length()).add(a11).intoArray(acc, c + NC + F.length());
        FloatVector.fromArray(F, acc, c + 2 * NC).add(a20).intoArray(acc, c + 2 * NC);
        FloatVector.fromArray(F, acc, c + 2 * NC + F.length()).add(a21).intoArray(acc, c + 2 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 3 * NC).add(a30).intoArray(acc, c + 3 * NC);
        FloatVector.fromArray(F, acc, c + 3 * NC + F.length()).add(a31).intoArray(acc, c + 3 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 4 * NC).add(a40).intoArray(acc, c + 4 * NC);
        FloatVector.fromArray(F, acc, c + 4 * NC + F.length()).add(a41).intoArray(acc, c + 4 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 5 * NC).add(a50).intoArray(acc, c + 5 * NC);
        FloatVector.fromArray(F, acc, c + 5 * NC + F.length()).add(a51).intoArray(acc, c + 5 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 6 * NC).add(a60).intoArray(acc, c + 6 * NC);
        FloatVector.fromArray(F, acc, c + 6 * NC + F.length()).add(a61).intoArray(acc, c + 6 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 7 * NC).add(a70).intoArray(acc, c + 7 * NC);
        FloatVector.fromArray(F, acc, c + 7 * NC + F.length()).add(a71).intoArray(acc, c + 7 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 8 * NC).add(a80).intoArray(acc, c + 8 * NC);
        FloatVector.fromArray(F, acc, c + 8 * NC + F.length()).add(a81).intoArray(acc, c + 8 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 9 * NC).add(a90).intoArray(acc, c + 9 * NC);
        FloatVector.fromArray(F, acc, c + 9 * NC + F.length()).add(a91).intoArray(acc, c + 9 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 10 * NC).add(aa0).intoArray(acc, c + 10 * NC);
        FloatVector.fromArray(F, acc, c + 10 * NC + F.length()).add(aa1).intoArray(acc, c + 10 * NC + F.length());
        FloatVector.fromArray(F, acc, c + 11 * NC).add(ab0).intoArray(acc, c + 11 * NC);
        FloatVector.fromArray(F, acc, c + 11 * NC + F.length()).add(ab1).intoArray(acc, c + 11 * NC + F.length());
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

    /**
     * Both halves of a tile row in one call: with twelve single {@link #addInto} calls C2 stopped inlining at the last
     * (NodeCountInliningCutoff), boxed its vector and allocated per call, and the growing eden's page faults cost
     * ~1/10 of a two-thread prefill (docs/performance-java.md section 31).
     */
    private static void addInto2(float[] a, int i, FloatVector v0, FloatVector v1) {
        FloatVector.fromArray(F, a, i).add(v0).intoArray(a, i);
        FloatVector.fromArray(F, a, i + F.length()).add(v1).intoArray(a, i + F.length());
    }

    static void addInto(float[] a, int i, FloatVector v) {
        FloatVector.fromArray(F, a, i).add(v).intoArray(a, i);
    }

    /**
     * Decode: out[r] = w[r] . x for one token, four rows per pass sharing each load of x, weights widened in registers.
     * As in {@link #matvecQuantized}, the four rows of a pass are a quarter of the slice apart, not neighbours: BF16
     * from memory (65536x2048 and 16384x11008, one thread) streamed 30-34 GB/s against 20-21 with neighbouring rows,
     * although a 2048-wide BF16 row is a whole 4 KB page.
     */
    private static void matvec(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                               int inDim, int rowStart, int rowEnd) {
        boolean bf16 = type == WeightType.BF16;
        long rowBytes = (long) inDim * (bf16 ? 2 : 4);
        int upper = F.loopBound(inDim);
        int r = rowStart;
        int gap = (rowEnd - rowStart) / ROWS;
        float[] lanes = new float[ROWS * F.length()];
        for (; r < rowStart + gap; r++) {
            long b0 = r * rowBytes, b1 = b0 + gap * rowBytes, b2 = b1 + gap * rowBytes, b3 = b2 + gap * rowBytes;
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
            a0.intoArray(lanes, 0);
            a1.intoArray(lanes, F.length());
            a2.intoArray(lanes, 2 * F.length());
            a3.intoArray(lanes, 3 * F.length());
            float s0 = sum(lanes, 0), s1 = sum(lanes, F.length());
            float s2 = sum(lanes, 2 * F.length()), s3 = sum(lanes, 3 * F.length());
            for (; i < inDim; i++) {
                float xi = x.getAtIndex(F32, i);
                s0 += weight(type, w, (long) r * inDim + i) * xi;
                s1 += weight(type, w, (long) (r + gap) * inDim + i) * xi;
                s2 += weight(type, w, (long) (r + 2 * gap) * inDim + i) * xi;
                s3 += weight(type, w, (long) (r + 3 * gap) * inDim + i) * xi;
            }
            out.setAtIndex(F32, r, s0);
            out.setAtIndex(F32, r + gap, s1);
            out.setAtIndex(F32, r + 2 * gap, s2);
            out.setAtIndex(F32, r + 3 * gap, s3);
        }
        r = rowStart + ROWS * gap;
        for (; r < rowEnd; r++) { // the rows left over by the four-row passes (at most three)
            long base = (long) r * inDim;
            FloatVector acc = FloatVector.zero(F);
            int i = 0;
            for (; i < upper; i += F.length()) {
                FloatVector xv = FloatVector.fromMemorySegment(F, x, i * 4L, NATIVE);
                FloatVector wv = bf16 ? bf16(w, (base + i) * 2L) : FloatVector.fromMemorySegment(F, w, (base + i) * 4L, LE);
                acc = wv.fma(xv, acc);
            }
            acc.intoArray(lanes, 0);
            float s = sum(lanes, 0);
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
    static void widenRow(WeightType type, MemorySegment w, long first, int n, float[] dst, int dstOff) {
        if (KQuant.handles(type)) { // first and n are whole blocks: inDim and KC are multiples of 256
            KQuant.widen(type, w, first / type.blockSize * type.blockBytes, n, dst, dstOff);
            return;
        }
        if (type.quantized()) { // first and n are whole blocks: inDim and the k blocks are multiples of 32
            widenQuantized(type, w, first / Quant.BLOCK * type.blockBytes, n, dst, dstOff);
            return;
        }
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
    private static float dot(MemorySegment a, long aOff, MemorySegment b, long bOff, int n, float[] lanes) {
        FloatVector acc = FloatVector.zero(F);
        int upper = F.loopBound(n);
        int i = 0;
        for (; i < upper; i += F.length()) {
            acc = FloatVector.fromMemorySegment(F, a, (aOff + i) * 4L, NATIVE)
                    .fma(FloatVector.fromMemorySegment(F, b, (bOff + i) * 4L, NATIVE), acc);
        }
        acc.intoArray(lanes, 0);
        float s = sum(lanes, 0);
        for (; i < n; i++) {
            s += a.getAtIndex(F32, aOff + i) * b.getAtIndex(F32, bOff + i);
        }
        return s;
    }

    // ---------------------------------------------------------------------------------------------- quantized

    // Q8_0 / Q4_0 weights are dequantized to f32 in registers and multiplied with the f32 activations: decode takes
    // four rows at a time like matvec, prefill goes through the f32 GEMM above (widenRow dequantizes each panel of
    // rows once for all the tokens). The native kernels quantize the activations to Q8_0 and take integer dot
    // products (llama.cpp's numerics); here the activations stay f32, so the only rounding is the weights' own.
    // Integer dot products were slower in Java: the Vector API has no int8 dot-product instruction (vpdpbusd), so
    // every block had to be widened to shorts, multiplied, widened to ints and converted to float anyway.

    /**
     * Bytes to widen into one F vector: 16 for 512-bit F, 8 for 256-bit (there is no 32-bit byte vector for 128: null,
     * and the kernels that need it take their plain loops). Shared by every Java kernel that widens bytes (KQuant,
     * PackedQ6K).
     */
    static final VectorSpecies<Byte> QB = F.vectorBitSize() >= 256
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4)) : null;
    /** The vector kernels take a block's 32 weights as 2 or 4 vectors of F: 256- and 512-bit F. */
    private static final boolean Q_VECTOR = QB != null && 2 * F.length() <= Quant.BLOCK;

    /**
     * Decode of Q8_0 / Q4_0 weights: out[r] = w[r] . x for one token, several rows per pass sharing each load of x.
     * The four rows of a pass are not neighbours but a quarter of the slice apart, so each streams
     * from its own pages: Q8_0 rows (2176 bytes for 2048 inputs) and Q4_0 rows (1152) are shorter than a 4 KB page,
     * and four neighbouring rows read as interleaved streams inside the same pages defeated the hardware prefetcher
     * (Java has no prefetch instruction): 8-9 GB/s per thread from memory against 21-26 with the rows spread.
     */
    private static void matvecQuantized(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                                        int inDim, int rowStart, int rowEnd) {
        long rowBytes = type.rowBytes(inDim);
        int blocks = inDim / Quant.BLOCK;
        int r = rowStart;
        float[] lanes = new float[4 * F.length()];
        if (Q_VECTOR) {
            if (type == WeightType.Q8_0 && Q8_TWO_ROWS && inDim <= Q8_TWO_ROWS_MAX_IN) {
                int gap = (rowEnd - rowStart) / 2;
                for (; r < rowStart + gap; r++) dot2RowsQ8_0(w, rowBytes, x, blocks, out, r, gap, lanes);
                r = rowStart + 2 * gap;
            } else if (type == WeightType.Q8_0) {
                int gap = (rowEnd - rowStart) / 4;
                for (; r < rowStart + gap; r++) dot4RowsQ8_0(w, rowBytes, x, blocks, out, r, gap, lanes);
                r = rowStart + 4 * gap;
            }
            // Q4_0: the model decodes its packed copy (PackedNibbles), and Q8_0 at 8 lanes its PackedQ8; a direct
            // call in the file's layout (tests, a caller that did not pack) takes the kernels here (Q8_0) or widens
            // each row below and takes a dot product (Q4_0)
        }
        float[] row = ROW_F32.get();
        if (row.length < inDim) {
            row = new float[inDim];
            ROW_F32.set(row);
        }
        for (; r < rowEnd; r++) { // the rows left over by the multi-row kernels (at most three), and Q4_0's
            widenQuantized(type, w, r * rowBytes, inDim, row, 0);
            float s = 0;
            for (int i = 0; i < inDim; i++) s += row[i] * x.getAtIndex(F32, i);
            out.setAtIndex(F32, r, s);
        }
    }

    /** One dequantized row for the decode's leftover rows (per thread, grown to the widest row seen). */
    private static final ThreadLocal<float[]> ROW_F32 = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Q8_0 rows r, r + gap, r + 2 gap, r + 3 gap (rowBytes each) . x into out. Per block: the products of the 32 weights
     * with x are summed in a vector, which is then scaled by the block's d into the row's accumulator. Two vectors of
     * each row per step, written out: with one per step, the 8-lane build (AVX2) compiled the four-step block loop
     * with its row offsets and accumulators on the stack and ran 3x slower than 16 lanes, not 2x (with two: 2.2x
     * faster at 8 lanes, the same at 16); with all four written out, C2 stopped inlining (NodeCountInliningCutoff).
     */
    private static void dot4RowsQ8_0(MemorySegment w, long rowBytes, MemorySegment x, int blocks,
                                     MemorySegment out, int r, int gap, float[] lanes) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long at0 = r * rowBytes, at1 = at0 + gap * rowBytes, at2 = at1 + gap * rowBytes, at3 = at2 + gap * rowBytes;
        for (int b = 0; b < blocks; b++, at0 += 34, at1 += 34, at2 += 34, at3 += 34) {
            FloatVector s0, s1, s2, s3;
            if (Q8_ONE_STEP) {
                // 16 lanes: the block is one step, written out with its first products as mul (no zero to add to)
                long xo = b * (long) Quant.BLOCK * 4;
                FloatVector xv = FloatVector.fromMemorySegment(F, x, xo, NATIVE);
                FloatVector xw = FloatVector.fromMemorySegment(F, x, xo + 4L * F.length(), NATIVE);
                s0 = q8(w, at0 + 2).mul(xv);
                s1 = q8(w, at1 + 2).mul(xv);
                s2 = q8(w, at2 + 2).mul(xv);
                s3 = q8(w, at3 + 2).mul(xv);
                s0 = q8(w, at0 + 2 + F.length()).fma(xw, s0);
                s1 = q8(w, at1 + 2 + F.length()).fma(xw, s1);
                s2 = q8(w, at2 + 2 + F.length()).fma(xw, s2);
                s3 = q8(w, at3 + 2 + F.length()).fma(xw, s3);
            } else {
                s0 = FloatVector.zero(F);
                s1 = s0;
                s2 = s0;
                s3 = s0;
                for (int j = 0; j < Quant.BLOCK; j += 2 * F.length()) {
                    long xo = (b * (long) Quant.BLOCK + j) * 4;
                    FloatVector xv = FloatVector.fromMemorySegment(F, x, xo, NATIVE);
                    FloatVector xw = FloatVector.fromMemorySegment(F, x, xo + 4L * F.length(), NATIVE);
                    s0 = q8(w, at0 + 2 + j).fma(xv, s0);
                    s1 = q8(w, at1 + 2 + j).fma(xv, s1);
                    s2 = q8(w, at2 + 2 + j).fma(xv, s2);
                    s3 = q8(w, at3 + 2 + j).fma(xv, s3);
                    s0 = q8(w, at0 + 2 + j + F.length()).fma(xw, s0);
                    s1 = q8(w, at1 + 2 + j + F.length()).fma(xw, s1);
                    s2 = q8(w, at2 + 2 + j + F.length()).fma(xw, s2);
                    s3 = q8(w, at3 + 2 + j + F.length()).fma(xw, s3);
                }
            }
            a0 = s0.fma(scale(w, at0), a0);
            a1 = s1.fma(scale(w, at1), a1);
            a2 = s2.fma(scale(w, at2), a2);
            a3 = s3.fma(scale(w, at3), a3);
        }
        a0.intoArray(lanes, 0);
        a1.intoArray(lanes, F.length());
        a2.intoArray(lanes, 2 * F.length());
        a3.intoArray(lanes, 3 * F.length());
        out.setAtIndex(F32, r, sum(lanes, 0));
        out.setAtIndex(F32, r + gap, sum(lanes, F.length()));
        out.setAtIndex(F32, r + 2 * gap, sum(lanes, 2 * F.length()));
        out.setAtIndex(F32, r + 3 * gap, sum(lanes, 3 * F.length()));
    }

    /**
     * With 8 float lanes (AVX2) and rows of up to Q8_TWO_ROWS_MAX_IN inputs, the Q8_0 decode takes two rows per pass
     * (dot2RowsQ8_0) instead of four: one thread, CPU time, 5-12% faster on 2048-wide rows (2048x2048 0.21 ms against
     * 0.24, 11008x2048 1.19-1.24 against 1.27-1.33), 10-20% slower on 11008-wide ones (2048x11008: 1.48-1.60 against
     * 1.30-1.34; x is 44 KB there, and two rows per pass read it twice as often). With 16 lanes four rows stay faster.
     */
    private static final boolean Q8_TWO_ROWS = 4 * F.length() == Quant.BLOCK;
    private static final int Q8_TWO_ROWS_MAX_IN = 4096;
    /**
     * With 16 float lanes a Q8_0 block is one step of dot4RowsQ8_0, written out with the first products as mul:
     * 10-15% less CPU than the step loop (one thread: 2048x2048 0.135-0.141 ms against 0.152-0.159, 11008x2048
     * 0.80-0.82 against 0.89-0.93). The same written-out form with a loop for the further steps of 8 lanes ran 4.5x
     * slower there (PrintInlining: q8() calls refused with NodeCountInliningCutoff), so 8 lanes keep the loop.
     */
    private static final boolean Q8_ONE_STEP = 2 * F.length() == Quant.BLOCK;

    /**
     * Q8_0 rows r and r + gap . x into out, for 8 float lanes (a block is four vectors): the four steps of a block are
     * written out, which C2 inlines for two rows (for four rows written out it stops inlining: see dot4RowsQ8_0); why it
     * runs faster than the four-row loop was not checked in the assembly. The same products and sums per row as
     * dot4RowsQ8_0.
     */
    private static void dot2RowsQ8_0(MemorySegment w, long rowBytes, MemorySegment x, int blocks,
                                     MemorySegment out, int r, int gap, float[] lanes) {
        int n = F.length();
        FloatVector a0 = FloatVector.zero(F), a1 = a0;
        long at0 = r * rowBytes, at1 = at0 + gap * rowBytes;
        for (int b = 0; b < blocks; b++, at0 += 34, at1 += 34) {
            long xo = b * (long) Quant.BLOCK * 4;
            FloatVector x0 = FloatVector.fromMemorySegment(F, x, xo, NATIVE);
            FloatVector x1 = FloatVector.fromMemorySegment(F, x, xo + 4L * n, NATIVE);
            FloatVector x2 = FloatVector.fromMemorySegment(F, x, xo + 8L * n, NATIVE);
            FloatVector x3 = FloatVector.fromMemorySegment(F, x, xo + 12L * n, NATIVE);
            FloatVector s0 = q8(w, at0 + 2).mul(x0), s1 = q8(w, at1 + 2).mul(x0);
            s0 = q8(w, at0 + 2 + n).fma(x1, s0);
            s1 = q8(w, at1 + 2 + n).fma(x1, s1);
            s0 = q8(w, at0 + 2 + 2 * n).fma(x2, s0);
            s1 = q8(w, at1 + 2 + 2 * n).fma(x2, s1);
            s0 = q8(w, at0 + 2 + 3 * n).fma(x3, s0);
            s1 = q8(w, at1 + 2 + 3 * n).fma(x3, s1);
            a0 = s0.fma(scale(w, at0), a0);
            a1 = s1.fma(scale(w, at1), a1);
        }
        a0.intoArray(lanes, 0);
        a1.intoArray(lanes, F.length());
        out.setAtIndex(F32, r, sum(lanes, 0));
        out.setAtIndex(F32, r + gap, sum(lanes, F.length()));
    }

    /** F.length() int8 weights at byte off, as f32. */
    private static FloatVector q8(MemorySegment w, long off) {
        return (FloatVector) ByteVector.fromMemorySegment(QB, w, off, LE).convertShape(VectorOperators.B2F, F, 0);
    }

    /** F.length() bytes of Q4_0 nibble pairs at off, sign-extended to ints (low() and high() mask what they need). */
    private static IntVector nibbles(MemorySegment w, long off) {
        return (IntVector) ByteVector.fromMemorySegment(QB, w, off, LE).convertShape(VectorOperators.B2I, I, 0);
    }

    /**
     * With 16 int lanes (AVX-512) a nibble becomes its weight by a table look-up (a two-table permute), which needs no
     * mask, no conversion and no offset; with 8 lanes (AVX2, tried with -XX:UseAVX=2) the look-up measured 3.5x slower
     * than masking and converting.
     */
    private static final boolean Q4_LOOKUP = I.length() == 16;
    /**
     * The Q4_0 weight values (nibble - 8) as f32 bit patterns in two tables of I.length(): selectFrom(a, b) indexes a
     * then b modulo 2 x I.length(), so lane i of the pair holds value (i & 15) - 8 (16 lanes: -8..7 twice).
     */
    private static final IntVector Q4_VALUES_A = q4Values(0), Q4_VALUES_B = q4Values(I.length());

    private static IntVector q4Values(int first) {
        int[] v = new int[I.length()];
        for (int i = 0; i < v.length; i++) v[i] = Float.floatToRawIntBits(((first + i) & 15) - 8);
        return IntVector.fromArray(I, v, 0);
    }

    /** The low nibbles of n as weights: (n & 15) - 8. */
    private static FloatVector low(IntVector n) {
        if (Q4_LOOKUP) return n.selectFrom(Q4_VALUES_A, Q4_VALUES_B).reinterpretAsFloats();
        return (FloatVector) n.and(15).sub(8).convert(VectorOperators.I2F, 0);
    }

    /** The high nibbles of n as weights: ((n >> 4) & 15) - 8 (the sign-extended bits above are masked off). */
    private static FloatVector high(IntVector n) {
        return low(n.lanewise(VectorOperators.ASHR, 4));
    }

    /** The fp16 scale d of the block at byte at, in every lane. */
    private static FloatVector scale(MemorySegment w, long at) {
        return FloatVector.broadcast(F, Float.float16ToFloat(w.get(U16_LE, at)));
    }

    /**
     * dst[dstOff, dstOff + n) = the n weights of {@code type} blocks from byte {@code at} (n a multiple of 32), as f32.
     * One loop per type, each its own method: with both in one loop behind a type test, C2 compiled the method for the
     * first type it met, recompiled it at an uncommon trap when the other came, and in 5 of 7 JVM runs that
     * recompilation widened Q4_0 5-10x slower (1024x11008, one thread: 4.6-9 ms instead of 0.9-1.0; the GEMM 15-30%
     * slower), so the GEMM's speed depended on which type a process had widened first.
     */
    private static void widenQuantized(WeightType type, MemorySegment w, long at, int n, float[] dst, int dstOff) {
        if (!Q_VECTOR) {
            Quant.dequantizeRow(type, w, at, n, dst, dstOff);
        } else if (type == WeightType.Q8_0) {
            widenQ8_0(w, at, n, dst, dstOff);
        } else {
            widenQ4_0(w, at, n, dst, dstOff);
        }
    }

    private static void widenQ8_0(MemorySegment w, long at, int n, float[] dst, int dstOff) {
        for (int o = dstOff; o < dstOff + n; o += Quant.BLOCK, at += WeightType.Q8_0.blockBytes) {
            FloatVector d = scale(w, at);
            for (int j = 0; j < Quant.BLOCK; j += F.length()) {
                q8(w, at + 2 + j).mul(d).intoArray(dst, o + j);
            }
        }
    }

    private static void widenQ4_0(MemorySegment w, long at, int n, float[] dst, int dstOff) {
        for (int o = dstOff; o < dstOff + n; o += Quant.BLOCK, at += WeightType.Q4_0.blockBytes) {
            FloatVector d = scale(w, at);
            for (int j = 0; j < Quant.BLOCK / 2; j += F.length()) {
                IntVector q = nibbles(w, at + 2 + j);
                low(q).mul(d).intoArray(dst, o + j);
                high(q).mul(d).intoArray(dst, o + Quant.BLOCK / 2 + j);
            }
        }
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
        float[] lanes = new float[8 * F.length()]; // for sum: scores4's eight dot products, or dot's one
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
            for (int c0 = first; c0 <= pos; ) {
                int c1 = stretchEnd(c0, pos + 1, capacity);
                int j = 0;
                for (; j + 4 <= run; j += 4) {
                    scores4(q, (long) (item + j) * headDim, headDim, kCache, c0 % capacity, c1 - c0, kvDim, kvOff,
                            scale, p, j * count + c0 - first, count, lanes);
                }
                for (; j < run; j++) {
                    for (int k = c0; k < c1; k++) {
                        long kRow = (long) (c0 % capacity + k - c0) * kvDim + kvOff;
                        p[j * count + k - first] = dot(q, (long) (item + j) * headDim, kCache, kRow, headDim, lanes) * scale;
                    }
                }
                c0 = c1;
            }
            for (int j = 0; j < run; j++) {
                softmax(p, j * count, count);
                out.asSlice((long) (item + j) * headDim * 4, headDim * 4L).fill((byte) 0);
            }
            // out += p v over the keys in chunks whose value rows stay in L2 while every head of the run reads them;
            // within a chunk one slice of F.length() dims is summed in registers over all its keys, four heads at a
            // time on one load of each value slice
            for (int c0 = first, c1; c0 <= pos; c0 = c1) {
                c1 = stretchEnd(c0, Math.min(pos + 1, c0 + V_CHUNK), capacity);
                int j = 0;
                for (; j + 4 <= run; j += 4) {
                    weightedSum4(p, j * count + c0 - first, count, vCache, c0 % capacity, c1 - c0, kvDim, kvOff, out,
                            (long) (item + j) * headDim, headDim);
                }
                for (; j < run; j++) {
                    weightedSum(p, j * count + c0 - first, vCache, c0 % capacity, c1 - c0, kvDim, kvOff, out,
                            (long) (item + j) * headDim, headDim);
                }
            }
            item += run;
        }
    }

    /**
     * p[pOff + j * count + i] = scale * (query j . key row row0 + i) for four queries (at qOff, headDim apart) and
     * keys i &lt; keys, two keys at a time: each key row is loaded once for the four queries and each query slice once
     * for the two keys, and the eight sums run as independent chains. An odd last key is paired with itself.
     */
    private static void scores4(MemorySegment q, long qOff, int headDim, MemorySegment k, int row0, int keys, int kvDim,
                                long kOff, float scale, float[] p, int pOff, int count, float[] lanes) {
        int upper = F.loopBound(headDim);
        long q0 = qOff * 4, q1 = q0 + headDim * 4L, q2 = q1 + headDim * 4L, q3 = q2 + headDim * 4L;
        for (int i = 0; i < keys; i += 2) {
            int i1 = Math.min(i + 1, keys - 1);
            long row = ((long) (row0 + i) * kvDim + kOff) * 4, row1 = ((long) (row0 + i1) * kvDim + kOff) * 4;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            int d = 0;
            for (; d < upper; d += F.length()) {
                FloatVector ka = FloatVector.fromMemorySegment(F, k, row + d * 4L, NATIVE);
                FloatVector kb = FloatVector.fromMemorySegment(F, k, row1 + d * 4L, NATIVE);
                FloatVector x0 = FloatVector.fromMemorySegment(F, q, q0 + d * 4L, NATIVE);
                FloatVector x1 = FloatVector.fromMemorySegment(F, q, q1 + d * 4L, NATIVE);
                FloatVector x2 = FloatVector.fromMemorySegment(F, q, q2 + d * 4L, NATIVE);
                FloatVector x3 = FloatVector.fromMemorySegment(F, q, q3 + d * 4L, NATIVE);
                a0 = x0.fma(ka, a0);
                b0 = x0.fma(kb, b0);
                a1 = x1.fma(ka, a1);
                b1 = x1.fma(kb, b1);
                a2 = x2.fma(ka, a2);
                b2 = x2.fma(kb, b2);
                a3 = x3.fma(ka, a3);
                b3 = x3.fma(kb, b3);
            }
            a0.intoArray(lanes, 0);
            a1.intoArray(lanes, F.length());
            a2.intoArray(lanes, 2 * F.length());
            a3.intoArray(lanes, 3 * F.length());
            b0.intoArray(lanes, 4 * F.length());
            b1.intoArray(lanes, 5 * F.length());
            b2.intoArray(lanes, 6 * F.length());
            b3.intoArray(lanes, 7 * F.length());
            float s0 = sum(lanes, 0), s1 = sum(lanes, F.length());
            float s2 = sum(lanes, 2 * F.length()), s3 = sum(lanes, 3 * F.length());
            float t0 = sum(lanes, 4 * F.length()), t1 = sum(lanes, 5 * F.length());
            float t2 = sum(lanes, 6 * F.length()), t3 = sum(lanes, 7 * F.length());
            for (; d < headDim; d++) {
                float ka = k.get(F32, row + d * 4L), kb = k.get(F32, row1 + d * 4L);
                float x0 = q.get(F32, q0 + d * 4L), x1 = q.get(F32, q1 + d * 4L);
                float x2 = q.get(F32, q2 + d * 4L), x3 = q.get(F32, q3 + d * 4L);
                s0 += x0 * ka;
                s1 += x1 * ka;
                s2 += x2 * ka;
                s3 += x3 * ka;
                t0 += x0 * kb;
                t1 += x1 * kb;
                t2 += x2 * kb;
                t3 += x3 * kb;
            }
            p[pOff + i] = s0 * scale;
            p[pOff + count + i] = s1 * scale;
            p[pOff + 2 * count + i] = s2 * scale;
            p[pOff + 3 * count + i] = s3 * scale;
            p[pOff + i1] = t0 * scale;
            p[pOff + count + i1] = t1 * scale;
            p[pOff + 2 * count + i1] = t2 * scale;
            p[pOff + 3 * count + i1] = t3 * scale;
        }
    }

    /**
     * The end of a stretch of positions from c0 (before end) whose cache rows do not wrap: rows c0 % capacity onwards
     * are contiguous up to the ring's last row.
     */
    private static int stretchEnd(int c0, int end, int capacity) {
        return Math.min(end, c0 + capacity - c0 % capacity);
    }

    /** Keys per pass of the weighted sum of values: 256 value rows of one KV head (128 dims: 128 KB) stay in L2. */
    private static final int V_CHUNK = 256;

    /**
     * y[yOff, yOff + n) += sum over keys i < keys of p[pOff + i] * v[(row0 + i) * kvDim + vOff, ... + n): value rows
     * row0.. of the cache (a stretch that does not wrap). Each F.length() dims are summed over all the keys in two
     * registers (the FMA latency), then added to y once.
     */
    private static void weightedSum(float[] p, int pOff, MemorySegment v, int row0, int keys, int kvDim,
                                    long vOff, MemorySegment y, long yOff, int n) {
        long stride = (long) kvDim * 4;
        long base = ((long) row0 * kvDim + vOff) * 4;
        int upper = F.loopBound(n);
        int d = 0;
        for (; d < upper; d += F.length()) {
            FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
            long at = base + d * 4L;
            int i = 0;
            for (; i + 1 < keys; i += 2, at += 2 * stride) {
                acc0 = FloatVector.fromMemorySegment(F, v, at, NATIVE).fma(FloatVector.broadcast(F, p[pOff + i]), acc0);
                acc1 = FloatVector.fromMemorySegment(F, v, at + stride, NATIVE).fma(FloatVector.broadcast(F, p[pOff + i + 1]), acc1);
            }
            if (i < keys) {
                acc0 = FloatVector.fromMemorySegment(F, v, at, NATIVE).fma(FloatVector.broadcast(F, p[pOff + i]), acc0);
            }
            acc0.add(acc1).add(FloatVector.fromMemorySegment(F, y, (yOff + d) * 4, NATIVE)).intoMemorySegment(y, (yOff + d) * 4, NATIVE);
        }
        for (; d < n; d++) {
            float s = 0;
            for (int i = 0; i < keys; i++) {
                s += p[pOff + i] * v.getAtIndex(F32, (long) (row0 + i) * kvDim + vOff + d);
            }
            y.setAtIndex(F32, yOff + d, y.getAtIndex(F32, yOff + d) + s);
        }
    }

    /**
     * weightedSum for four heads at once: their weights are p rows count apart, their outputs y rows n apart. Each
     * F.length() dims of a value row are loaded once for the four (one register per head over all the keys).
     */
    private static void weightedSum4(float[] p, int pOff, int count, MemorySegment v, int row0, int keys, int kvDim,
                                     long vOff, MemorySegment y, long yOff, int n) {
        long stride = (long) kvDim * 4;
        long base = ((long) row0 * kvDim + vOff) * 4;
        int upper = F.loopBound(n);
        int d = 0;
        for (; d < upper; d += F.length()) {
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            long at = base + d * 4L;
            for (int i = 0; i < keys; i++, at += stride) {
                FloatVector x = FloatVector.fromMemorySegment(F, v, at, NATIVE);
                int w = pOff + i;
                a0 = x.fma(FloatVector.broadcast(F, p[w]), a0);
                a1 = x.fma(FloatVector.broadcast(F, p[w + count]), a1);
                a2 = x.fma(FloatVector.broadcast(F, p[w + 2 * count]), a2);
                a3 = x.fma(FloatVector.broadcast(F, p[w + 3 * count]), a3);
            }
            long y0 = (yOff + d) * 4, y1 = y0 + n * 4L, y2 = y1 + n * 4L, y3 = y2 + n * 4L;
            a0.add(FloatVector.fromMemorySegment(F, y, y0, NATIVE)).intoMemorySegment(y, y0, NATIVE);
            a1.add(FloatVector.fromMemorySegment(F, y, y1, NATIVE)).intoMemorySegment(y, y1, NATIVE);
            a2.add(FloatVector.fromMemorySegment(F, y, y2, NATIVE)).intoMemorySegment(y, y2, NATIVE);
            a3.add(FloatVector.fromMemorySegment(F, y, y3, NATIVE)).intoMemorySegment(y, y3, NATIVE);
        }
        for (; d < n; d++) {
            for (int h = 0; h < 4; h++) {
                float s = 0;
                for (int i = 0; i < keys; i++) {
                    s += p[pOff + h * count + i] * v.getAtIndex(F32, (long) (row0 + i) * kvDim + vOff + d);
                }
                long at = yOff + (long) h * n + d;
                y.setAtIndex(F32, at, y.getAtIndex(F32, at) + s);
            }
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

    /** Softmax in place over p[off, off + n), max-subtracted, in f32 (EXP: the JDK's vector exp, as in swiglu). */
    private static void softmax(float[] p, int off, int n) {
        int upper = F.loopBound(n);
        FloatVector maxV = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i < upper; i += F.length()) {
            maxV = maxV.max(FloatVector.fromArray(F, p, off + i));
        }
        float max = maxV.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            max = Math.max(max, p[off + i]);
        }
        FloatVector sumV = FloatVector.zero(F);
        for (i = 0; i < upper; i += F.length()) {
            FloatVector e = FloatVector.fromArray(F, p, off + i).sub(max).lanewise(VectorOperators.EXP);
            e.intoArray(p, off + i);
            sumV = sumV.add(e);
        }
        float[] lanes = new float[F.length()];
        sumV.intoArray(lanes, 0);
        float sum = sum(lanes, 0);
        for (; i < n; i++) {
            float e = (float) Math.exp(p[off + i] - max);
            p[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (i = 0; i < upper; i += F.length()) {
            FloatVector.fromArray(F, p, off + i).mul(inv).intoArray(p, off + i);
        }
        for (; i < n; i++) {
            p[off + i] *= inv;
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
        // as the attention's softmax: vector max, the JDK's vector exp, one scale
        int upper = F.loopBound(n);
        FloatVector maxV = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i < upper; i += F.length()) {
            maxV = maxV.max(FloatVector.fromMemorySegment(F, x, i * 4L, NATIVE));
        }
        float max = maxV.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            max = Math.max(max, x.getAtIndex(F32, i));
        }
        FloatVector sumV = FloatVector.zero(F);
        for (i = 0; i < upper; i += F.length()) {
            FloatVector e = FloatVector.fromMemorySegment(F, x, i * 4L, NATIVE).sub(max).lanewise(VectorOperators.EXP);
            e.intoMemorySegment(x, i * 4L, NATIVE);
            sumV = sumV.add(e);
        }
        float[] lanes = new float[F.length()];
        sumV.intoArray(lanes, 0);
        float sum = sum(lanes, 0);
        for (; i < n; i++) {
            float e = (float) Math.exp(x.getAtIndex(F32, i) - max);
            x.setAtIndex(F32, i, e);
            sum += e;
        }
        float inv = 1f / sum;
        for (i = 0; i < upper; i += F.length()) {
            FloatVector.fromMemorySegment(F, x, i * 4L, NATIVE).mul(inv).intoMemorySegment(x, i * 4L, NATIVE);
        }
        for (; i < n; i++) {
            x.setAtIndex(F32, i, x.getAtIndex(F32, i) * inv);
        }
    }

    // ---------------------------------------------------------------------------------------------- bf16 activations

    /**
     * Per-thread x rounded to bf16. Off-heap like every other activation: the Vector API's loads keep one type profile
     * per call site, and a heap segment among the native ones made C2 compile the kernels' loads as calls (Java
     * `--activations bf16` decoded at half the f32 speed; docs/performance-java.md section 12 found the same for packed
     * weights). An automatic arena: a thread's buffer is freed with the thread.
     */
    private static final ThreadLocal<MemorySegment> BF16_ROUNDED = ThreadLocal.withInitial(() -> MemorySegment.NULL);

    /**
     * The activations rounded to bf16, then the ordinary f32 path: the same numerics as the native code without
     * AVX512_BF16 (products of two bf16 values are exact in f32, so only the order of the sums differs).
     */
    @Override
    public void matmulBf16Activations(MemorySegment w, MemorySegment x, MemorySegment out,
                                      int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        if (tokens >= GEMM_MIN_TOKENS) { // rounded in the GEMM's transpose of x: no pass over a copy of x
            gemm(fileRows(WeightType.BF16, w, inDim), x, true, out, tokens, inDim, outStride, rowStart, rowEnd);
            return;
        }
        long n = (long) tokens * inDim;
        if (n > Integer.MAX_VALUE / Float.BYTES) {
            throw new IllegalArgumentException("matmulBf16Activations: " + n + " activations is too many");
        }
        MemorySegment rounded = BF16_ROUNDED.get();
        if (rounded.byteSize() < n * Float.BYTES) {
            rounded = Arena.ofAuto().allocate(n * Float.BYTES, 64);
            BF16_ROUNDED.set(rounded);
        }
        roundToBf16(x, rounded, n);
        matmul(WeightType.BF16, w, rounded, out, tokens, inDim, outStride, rowStart, rowEnd);
    }

    /**
     * to[i] = roundToBf16(from[i]) for i &lt; n, bit for bit (every piece of a decode call rounds x): through this
     * thread's heap stage, so that the vector rounding is the one loop below.
     */
    static void roundToBf16(MemorySegment from, MemorySegment to, long n) {
        float[] stage = SHARE_STAGE.get();
        for (long i = 0; i < n; i += stage.length) {
            int chunk = (int) Math.min(stage.length, n - i);
            roundToBf16(from, i, stage, 0, chunk);
            MemorySegment.copy(stage, 0, to, F32, i * 4, chunk);
        }
    }

    /**
     * to[toOff + i] = roundToBf16(from[fromIndex + i]) for i &lt; n, bit for bit, a vector at a time: the GEMM's copy of
     * x into its heap stage (the destination is a float[], not a heap segment: a heap segment would share the loads'
     * type profile, see above). The lanes' rounding is written out in the loop: as a method of its own (95 bytes of
     * bytecode) C2 did not inline it here ("too big"), so every vector went in and came out boxed, 3 MB allocated per
     * 128 x 2048 call, and the growing eden's page faults fell in the first timed prefills (docs/performance-java.md
     * section 37).
     */
    static void roundToBf16(MemorySegment from, long fromIndex, float[] to, int toOff, int n) {
        int i = 0;
        for (int end = F.loopBound(n); i < end; i += F.length()) {
            IntVector bits = FloatVector.fromMemorySegment(F, from, (fromIndex + i) * 4, NATIVE).reinterpretAsInts();
            IntVector magnitude = bits.and(0x7fffffff);
            IntVector nearestEven = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7fff).and(0xffff0000);
            IntVector rounded = nearestEven
                    .blend(bits.and(0x80000000), magnitude.lt(0x00800000))                        // denormal: signed zero
                    .blend(bits.and(0xffff0000).or(0x00400000), magnitude.compare(VectorOperators.GT, 0x7f800000)); // quiet NaN
            rounded.reinterpretAsFloats().intoArray(to, toOff + i);
        }
        for (; i < n; i++) {
            to[toOff + i] = roundToBf16(from.getAtIndex(F32, fromIndex + i));
        }
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
