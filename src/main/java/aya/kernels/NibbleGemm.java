package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * The 4-bit prefill (Q4_0, Q4_K through {@link PackedNibbles}) as a 16-bit integer GEMM (docs/performance-java.md
 * section 33): out = w x with x quantized per block of 32 as the decode quantizes it ({@link NibbleActivations}:
 * dx = f16(max|x| / 127), xq = roundf(x / (max|x| / 127))), so a prompt and the tokens after it see the same product.
 *
 * <p>Lanes run along tokens, as in the f32 GEMM, and each 32-bit lane holds a pair of 16-bit values: the weights
 * (q - 8) of positions l and l + 16 of a block (l = 0..15: the two nibbles of the block's byte l in Q4_0's file order),
 * the matching pair xq of one token. A weight pair is broadcast as an int (a plain load), {@code vpmullw} multiplies
 * both halves and {@code vpaddw} adds them into 16-bit sums that wrap; after a block's 16 pairs, one int shift-add
 * folds the two halves: the top 16 bits then hold sum over the block of (q - 8) xq, exact because
 * |sum| <= 32 * 8 * 127 = 32512. That is the only drain, per block, from registers: to f32, times s dx (row scale
 * times token scale), into f32 accumulators that stay in registers over a k block; Q4_K adds (o + 8 s) dx sum xq
 * (w = s q + o = s (q - 8) + (o + 8 s)). Per block these are the decode's terms ({@link PackedNibbles#matvec}).
 *
 * <p>Blocking (BLIS, as {@link JavaKernels}'s f32 GEMM): x quantized into tiles of TT tokens, once per job when
 * {@link JavaKernels#shareInput} did it for the job's matrices ({@link Quantized}), else NC tokens at a time per call; MC rows unpacked from the file's bytes to (q - 8) pairs, KR columns at a time; in each KC block every token
 * tile meets every tile of R rows. Used only with 512-bit vectors: there {@code vpmullw} + {@code vpaddw} run 2.1x
 * the f32 FMA's multiply-adds per cycle; with 256-bit ones (Zen 3, {@code -XX:UseAVX=2}) it has no edge.
 */
final class NibbleGemm {

    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    /** As many bytes as I has ints: one byte of nibbles per pair. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(I.length() * 8));
    private static final int BLOCK = Quant.BLOCK, PAIRS = BLOCK / 2;

    /** On at 512-bit vectors (off with -Daya.java.i16gemm=false, for A/B runs against the f32 GEMM). */
    static final boolean ENABLED = F.vectorBitSize() >= 512 && Boolean.parseBoolean(System.getProperty("aya.java.i16gemm", "true"));
    /** Fewer tokens take the f32 GEMM (below a tile the padding and x's quantization are not paid back). */
    static final int MIN_TOKENS = 16;

    /**
     * Rows per micro-kernel tile: R broadcasts and T loads feed R x T multiply-adds per pair. 4 x 2 (with its eight
     * f32 sums in registers, or drained through memory) made C2 stop inlining the Vector API calls
     * (NodeCountInliningCutoff) and box them: 10x slower; 2 x 2 inlines fully.
     */
    static final int R = 2;
    /** Token vectors per tile. */
    static final int T = 2;
    /** Tokens per tile. */
    static final int TT = T * F.length();
    /** Columns per k block: a token tile's pairs (TT x KC / 2 ints, 16 KB at 512 bits) stay in L1. */
    static final int KC = 256;
    /** Rows per row block (a multiple of R). */
    static final int MC = 64;
    /** Columns unpacked per pass over a row block: the panel is MC x KR / 2 ints (256 KB). */
    static final int KR = 2048;
    /** Tokens per pass: bounds x's pairs (NC x cols / 2 ints, 5.6 MB for 11008 columns). */
    static final int NC = 256;

    /** x index (in ints) of lane i of a quantized pair vector: the same token in I.length() consecutive pairs. */
    private static final int[] PAIR_STRIDE = NibbleActivations.strideMap(TT);

    /** x quantized in tiles of TT tokens (the padding tokens of the last tile zero). */
    static final class Quantized {
        /** Tile u's pair i at (u * cols / 2 + i) * TT. */
        int[] xq = new int[0];
        /** Per tile, block and token: dx, and dx sum xq (Q4_K): [tiles][blocks][TT]. */
        float[] dx = new float[0], dxSum = new float[0];

        /** Room for this many tiles of cols columns. */
        void grow(int tiles, int cols) {
            if (xq.length < tiles * TT * cols / 2) {
                xq = new int[tiles * TT * cols / 2];
                dx = new float[tiles * TT * cols / BLOCK];
                dxSum = new float[tiles * TT * cols / BLOCK];
            }
        }
    }

    /** Buffers of one call, reused by later calls. */
    static final class Scratch {
        /** One token of x in f32. */
        float[] row = new float[0];
        /** NC tokens of x, when the call quantizes them itself. */
        final Quantized q = new Quantized();
        /** MC rows of (q - 8) pairs for KR columns: row j at j * KR / 2. */
        final int[] panel = new int[MC * KR / 2];
        /** The panel rows' s and o + 8 s per block (zero for padding rows): row j at j * KR / 32. */
        final float[] scale = new float[MC * KR / BLOCK], offset = new float[MC * KR / BLOCK];
        /** The output of the current MC rows for the current tokens: [MC][NC]. */
        final float[] acc = new float[MC * NC];

        void grow(int cols) {
            if (row.length < cols) row = new float[cols];
            q.grow(NC / TT, cols);
        }
    }

    /** Scratch of the calls in flight (bounded by the threads computing at once, like the f32 GEMM's). */
    private static final ConcurrentLinkedDeque<Scratch> SCRATCH = new ConcurrentLinkedDeque<>();
    /** Per thread: one token of x in f32, for {@link #quantizeTiles}. */
    private static final ThreadLocal<float[][]> ROW = ThreadLocal.withInitial(() -> new float[1][0]);

    private NibbleGemm() {
    }

    /** Whether a prefill of this many tokens goes through here. */
    static boolean uses(int tokens) {
        return ENABLED && tokens >= MIN_TOKENS;
    }

    /**
     * out[t * outStride + r] = w[r] . x[t] for tokens t and rows [rowStart, rowEnd); shared, if not null, holds all
     * tokens of x quantized ({@link #quantizeTiles}), else the call quantizes them.
     */
    static void matmul(PackedNibbles w, MemorySegment x, MemorySegment out, int tokens, int outStride,
                       int rowStart, int rowEnd, Quantized shared) {
        Scratch s = SCRATCH.pollFirst();
        if (s == null) s = new Scratch();
        try {
            s.grow(w.cols());
            for (int t0 = 0; t0 < tokens; t0 += NC) {
                int n = Math.min(NC, tokens - t0);
                if (shared != null) {
                    gemm(w, out, t0, n, outStride, rowStart, rowEnd, s, shared, t0 / TT);
                } else {
                    quantize(x, t0, n, w.cols(), s.row, s.q, 0);
                    gemm(w, out, t0, n, outStride, rowStart, rowEnd, s, s.q, 0);
                }
            }
        } finally {
            SCRATCH.offerFirst(s);
        }
    }

    /**
     * Tiles [from, to) of all tokens of x [tokens, cols] into q (grown to tiles of the whole x by the caller): the
     * work of {@link JavaKernels#shareInput}'s items, any thread.
     */
    static void quantizeTiles(MemorySegment x, int tokens, int cols, Quantized q, int from, int to) {
        float[][] row = ROW.get();
        if (row[0].length < cols) row[0] = new float[cols];
        for (int u = from; u < to; u++) {
            quantize(x, u * TT, Math.min(TT, tokens - u * TT), cols, row[0], q, u);
        }
    }

    /**
     * Tokens [t0, t0 + n) of x [.., cols] into q's tiles from u0 (row: one token's room); the rest of the last tile
     * zero. Per token and block: dx = f16(max|x| / 127), xq = roundf(x / (max|x| / 127)), exactly
     * {@link NibbleActivations}'s numbers.
     */
    static void quantize(MemorySegment x, int t0, int n, int cols, float[] row, Quantized q, int u0) {
        int blocks = cols / BLOCK, tiles = (n + TT - 1) / TT;
        int[] xq = q.xq;
        if (n % TT != 0) { // the last tile's padding tokens: all zero
            int u = u0 + tiles - 1;
            Arrays.fill(xq, u * cols / 2 * TT, (u + 1) * cols / 2 * TT, 0);
            Arrays.fill(q.dx, u * blocks * TT, (u + 1) * blocks * TT, 0f);
            Arrays.fill(q.dxSum, u * blocks * TT, (u + 1) * blocks * TT, 0f);
        }
        for (int t = 0; t < n; t++) {
            MemorySegment.copy(x, JavaKernels.F32, (long) (t0 + t) * cols * 4, row, 0, cols);
            int u = u0 + t / TT, lane = t % TT;
            for (int b = 0; b < blocks; b++) {
                int first = b * BLOCK;
                FloatVector amax = FloatVector.zero(F);
                for (int i = 0; i < BLOCK; i += F.length()) {
                    amax = amax.max(FloatVector.fromArray(F, row, first + i).abs());
                }
                float d = amax.reduceLanes(VectorOperators.MAX) / 127f;
                float id = d == 0f ? 0f : 1f / d;
                IntVector sum = IntVector.zero(I);
                for (int l = 0; l < PAIRS; l += I.length()) {
                    IntVector lo = NibbleActivations.roundf(FloatVector.fromArray(F, row, first + l).mul(id));
                    IntVector hi = NibbleActivations.roundf(FloatVector.fromArray(F, row, first + l + PAIRS).mul(id));
                    sum = sum.add(lo).add(hi);
                    lo.and(0xFFFF).or(hi.lanewise(VectorOperators.LSHL, 16))
                            .intoArray(xq, (u * cols / 2 + b * PAIRS + l) * TT + lane, PAIR_STRIDE, 0);
                }
                float dx = Float.float16ToFloat(Float.floatToFloat16(d)); // the native scale's rounding
                int at = (u * blocks + b) * TT + lane;
                q.dx[at] = dx;
                q.dxSum[at] = dx * sum.reduceLanes(VectorOperators.ADD);
            }
        }
    }

    /** Rows [rowStart, rowEnd) for the n quantized tokens in q's tiles from u0, into out from token t0. */
    private static void gemm(PackedNibbles w, MemorySegment out, int t0, int n, int outStride,
                             int rowStart, int rowEnd, Scratch s, Quantized q, int u0) {
        int cols = w.cols(), blocks = cols / BLOCK, tiles = (n + TT - 1) / TT;
        float[] acc = s.acc;
        boolean offsets = w.hasOffsets();
        for (int r0 = rowStart; r0 < rowEnd; r0 += MC) {
            int rows = Math.min(MC, rowEnd - r0), rowTiles = (rows + R - 1) / R;
            Arrays.fill(acc, 0, rowTiles * R * NC, 0f);
            for (int k1 = 0; k1 < cols; k1 += KR) {
                int kr = Math.min(KR, cols - k1);
                unpack(w, r0, rows, rowTiles * R, k1, kr, s);
                for (int k0 = k1; k0 < k1 + kr; k0 += KC) {
                    int kc = Math.min(KC, k1 + kr - k0);
                    for (int u = 0; u < tiles; u++) {
                        int xo = ((u0 + u) * cols + k0) / 2 * TT, dxo = ((u0 + u) * blocks + k0 / BLOCK) * TT;
                        for (int rt = 0; rt < rowTiles; rt++) {
                            int p = rt * R * (kr / 2) + (k0 - k1) / 2, sc = rt * R * (kr / BLOCK) + (k0 - k1) / BLOCK;
                            kernel(s.panel, p, kr / 2, s.scale, sc, kr / BLOCK, q.xq, xo, q.dx, dxo, kc / BLOCK,
                                    acc, rt * R * NC + u * TT);
                        }
                    }
                }
                if (offsets) NibbleGemm.offsets(s.offset, rows, kr / BLOCK, q.dxSum, blocks, k1 / BLOCK, u0, tiles, acc);
            }
            for (int t = 0; t < n; t++) { // row by row of out: contiguous writes
                long o = (long) (t0 + t) * outStride + r0;
                for (int j = 0; j < rows; j++) {
                    out.setAtIndex(JavaKernels.F32, o + j, acc[j * NC + t]);
                }
            }
        }
    }

    /**
     * Rows [r0, r0 + rows) x columns [k1, k1 + kr) of w into s.panel as (q - 8) pairs (row j at j * kr / 2, pair
     * b * 16 + l = positions l and l + 16 of block b) and their s, o + 8 s into s.scale, s.offset (row j at
     * j * kr / 32); rows up to padRows are zero.
     */
    private static void unpack(PackedNibbles w, int r0, int rows, int padRows, int k1, int kr, Scratch s) {
        MemorySegment src = w.source();
        WeightType type = w.sourceType();
        int cols = w.cols(), blocks = kr / BLOCK;
        boolean offsets = w.hasOffsets();
        for (int j = 0; j < padRows; j++) {
            int p = j * kr / 2, sc = j * blocks;
            if (j >= rows) {
                Arrays.fill(s.panel, p, p + kr / 2, 0);
                Arrays.fill(s.scale, sc, sc + blocks, 0f);
                Arrays.fill(s.offset, sc, sc + blocks, 0f);
                continue;
            }
            int r = r0 + j;
            w.factors(r, k1 / BLOCK, blocks, false, s.scale, sc);
            if (offsets) w.factors(r, k1 / BLOCK, blocks, true, s.offset, sc);
            if (type == WeightType.Q4_0) {
                long at = ((long) r * cols + k1) / BLOCK * type.blockBytes + 2; // past the block's f16 scale
                for (int b = 0; b < blocks; b++, at += type.blockBytes, p += PAIRS) {
                    for (int l = 0; l < PAIRS; l += I.length()) { // byte l: weight l low, l + 16 high
                        IntVector v = bytes(src, at + l);
                        pairs(v.and(15), v.lanewise(VectorOperators.LSHR, 4).and(15), s.panel, p + l);
                    }
                }
            } else { // Q4_K: 32 bytes per two sub-blocks, byte l = weight l of the first (low) and of the second (high)
                long at = ((long) r * cols + k1) / KQuant.QK_K * type.blockBytes + 16; // past d, dmin, scales
                for (int b = 0; b < blocks; b += 2, p += 2 * PAIRS) {
                    if (b % 8 == 0 && b > 0) at += type.blockBytes - 128;
                    for (int l = 0; l < PAIRS; l += I.length()) {
                        IntVector v = bytes(src, at + l), v16 = bytes(src, at + l + PAIRS);
                        pairs(v.and(15), v16.and(15), s.panel, p + l);
                        pairs(v.lanewise(VectorOperators.LSHR, 4).and(15), v16.lanewise(VectorOperators.LSHR, 4).and(15),
                                s.panel, p + PAIRS + l);
                    }
                    at += 2 * PAIRS;
                }
            }
        }
    }

    /** I.length() bytes at w[at] as ints (sign-extended: callers keep nibbles only). */
    private static IntVector bytes(MemorySegment w, long at) {
        return (IntVector) ByteVector.fromMemorySegment(B, w, at, JavaKernels.LE).convertShape(VectorOperators.B2I, I, 0);
    }

    /** Nibbles lo, hi (0..15) as the 16-bit pair (lo - 8, hi - 8) into panel[at ..]. */
    private static void pairs(IntVector lo, IntVector hi, int[] panel, int at) {
        lo.or(hi.lanewise(VectorOperators.LSHL, 16)).reinterpretAsShorts().sub((short) 8)
                .reinterpretAsInts().intoArray(panel, at);
    }

    /**
     * The micro-kernel: for R rows (panel row j at p + j * rowPairs, their scales at sc + j * rowBlocks) and the TT
     * tokens of one tile (pairs at xo, TT ints per pair; dx at dxo, TT per block), over {@code blocks} blocks of 32
     * columns: acc[c + j * NC + token] += sum over the blocks of s dx sum (q - 8) xq. Per block, R x T 16-bit pair
     * sums over its 16 pairs, then folded and scaled into f32 sums (class comment), all in registers. Kept small
     * (Q4_K's offset term is {@link #offsets}'s): with it C2 stopped inlining (NodeCountInliningCutoff) and boxed.
     */
    private static void kernel(int[] panel, int p, int rowPairs, float[] scale, int sc, int rowBlocks,
                               int[] xq, int xo, float[] dx, int dxo, int blocks, float[] acc, int c) {
        int h = F.length();
        FloatVector f00 = FloatVector.fromArray(F, acc, c), f01 = FloatVector.fromArray(F, acc, c + h);
        FloatVector f10 = FloatVector.fromArray(F, acc, c + NC), f11 = FloatVector.fromArray(F, acc, c + NC + h);
        for (int b = 0; b < blocks; b++) {
            ShortVector a00 = ShortVector.zero(PackedNibbles.SV), a01 = a00, a10 = a00, a11 = a00;
            int w0 = p + b * PAIRS, x0 = xo + b * PAIRS * TT;
            for (int l = 0; l < PAIRS; l++) {
                ShortVector v0 = IntVector.fromArray(I, xq, x0 + l * TT).reinterpretAsShorts();
                ShortVector v1 = IntVector.fromArray(I, xq, x0 + l * TT + h).reinterpretAsShorts();
                ShortVector q = IntVector.broadcast(I, panel[w0 + l]).reinterpretAsShorts();
                a00 = a00.add(q.mul(v0));
                a01 = a01.add(q.mul(v1));
                q = IntVector.broadcast(I, panel[w0 + rowPairs + l]).reinterpretAsShorts();
                a10 = a10.add(q.mul(v0));
                a11 = a11.add(q.mul(v1));
            }
            int d = dxo + b * TT, s0 = sc + b;
            FloatVector dx0 = FloatVector.fromArray(F, dx, d), dx1 = FloatVector.fromArray(F, dx, d + h);
            FloatVector s = FloatVector.broadcast(F, scale[s0]);
            f00 = fold(a00).fma(s.mul(dx0), f00);
            f01 = fold(a01).fma(s.mul(dx1), f01);
            s = FloatVector.broadcast(F, scale[s0 + rowBlocks]);
            f10 = fold(a10).fma(s.mul(dx0), f10);
            f11 = fold(a11).fma(s.mul(dx1), f11);
        }
        f00.intoArray(acc, c);
        f01.intoArray(acc, c + h);
        f10.intoArray(acc, c + NC);
        f11.intoArray(acc, c + NC + h);
    }

    /**
     * A block's pair sums as f32: the two 16-bit halves of each int lane added (v + v << 16 = v * 0x10001,
     * wrapping; the top half then holds the block's exact sum), sign-extended, converted.
     */
    private static FloatVector fold(ShortVector a) {
        IntVector v = a.reinterpretAsInts();
        return (FloatVector) v.mul(0x10001).lanewise(VectorOperators.ASHR, 16).convert(VectorOperators.I2F, 0);
    }

    /**
     * Q4_K's offset term for the panel's rows (panel row j's o + 8 s at j * rowBlocks) and the tokens of
     * tiles [u0, u0 + tiles) (dx sum xq at dxSum): acc[j * NC + token] += sum over the panel's blocks of (o + 8 s) dx sum xq, an f32 product with k = blocks.
     */
    private static void offsets(float[] offset, int rows, int rowBlocks, float[] dxSum, int blocks, int b0,
                                int u0, int tiles, float[] acc) {
        for (int j = 0; j < rows; j++) {
            for (int t = 0; t < tiles * TT; t += F.length()) {
                int d = ((u0 + t / TT) * blocks + b0) * TT + t % TT;
                FloatVector f = FloatVector.zero(F);
                for (int b = 0; b < rowBlocks; b++, d += TT) {
                    f = FloatVector.broadcast(F, offset[j * rowBlocks + b]).fma(FloatVector.fromArray(F, dxSum, d), f);
                }
                JavaKernels.addInto(acc, j * NC + t, f);
            }
        }
    }
}
