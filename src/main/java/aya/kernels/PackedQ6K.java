package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A Q6_K matrix repacked at load for the Java backend's 16-bit products, one block of 32 weights per short lane as
 * {@link PackedNibbles} (docs/performance-java.md section 21), so that it multiplies the same activations
 * ({@link NibbleActivations}: x quantized per block of 32 as native's Q8_0, in lane = block order).
 *
 * <p>A 16-bit lane holds a sum of 8 products exactly ((q - 32) xq: 8 * 32 * 127 = 32512), not 32, so each block's 32
 * weights go as NibbleActivations' four slots of 8 (slot 0: weights 0-7, 1: 16-23, 2: 8-15, 3: 24-31, the order
 * {@link NibbleActivations#SLOT_OFFSET} gives), each slot's 8 values q0..q7 (0..63, position k of the slot) in three
 * shorts: {@code S0 = q0 | (q6 & 15) << 6 | q1 << 10}, {@code S1 = q2 | (q7 & 15) << 6 | q3 << 10},
 * {@code S2 = q4 | (q6 >> 4 | (q7 >> 4) << 2) << 6 | q5 << 10} (section 19's encoding). Slots 0 and 2 are the
 * block's first sub-block of 16 (one int8 scale), 1 and 3 its second. A vector of G shorts holds G / 2 blocks' two
 * slots of one sub-block as lane pairs (lane 2i: slot h of block i of its half, lane 2i + 1: slot h + 2), so that an
 * int lane is one block's sub-block, and the int view of S0, S1, S2 takes the shifts (an int shift has an immediate
 * count; C2 loads a 16-bit shift's count into a register each time: section 28).
 * In blocks of {@link #ROWS} rows (the last block may have fewer, n): per group of G blocks g and sub-block h,
 * [n rows][2 halves of the blocks][G] shorts in each of three planes, one per S0, S1, S2, each plane the whole
 * matrix's; [n rows][G] int8 scales; per group and row, each super-block of 256's d as f32. 212 bytes per 256
 * weights (the file: 210), plus the zero blocks that pad a row's last group. The decode reads a block's rows for one
 * (g, h) after another at power-of-two strides, so its row loop is a counted loop (below), and each plane, the scales
 * and the d in order: five long sequential streams. Why whole-matrix planes: with S0, S1, S2 each a 4 KB plane of
 * the (g, h) step, one after another (session 17's layout), the three short streams jumped on every 12 KB and one
 * thread read memory at ~15 GB/s against ~30 from the caches; long streams keep the hardware prefetchers ahead
 * (~23 GB/s, docs/performance-java.md section 40).
 *
 * <p>Per lane and slot the kernel starts from {@code -32 sum xq} (NibbleActivations' {@code minus32}) and adds
 * {@code q xq} in 16 bits that wrap: the end is exactly {@code sum (q - 32) xq}. The two slots of a sub-block are added
 * as ints and multiplied by its scale (exact), converted to f32 and multiplied by {@code d dx} (two f16 values: exact)
 * into the row's f32 sums: each sub-block's term is its exact integer dot product times exact scales, one rounding.
 *
 * <p>The prefill GEMM widens the file's own bytes ({@link KQuant#widen}, vector code): a block keeps its weights
 * together there, where this layout spreads them over 12 vectors (section 19's widening from it was 1.47x slower).
 * On the Java heap, as PackedNibbles (segment loads share a type profile with the mapped file: section 12).
 */
final class PackedQ6K extends JavaPackedMatrix {

    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Short> SV = PackedNibbles.SV;
    /** F.length() int8 scales per load (null below 256-bit F: then the model reads Q6_K in the file's layout). */
    private static final VectorSpecies<Byte> FB = JavaKernels.QB;
    /** Whether this layout is used: 256- and 512-bit vectors (G >= 16, F.length() int8 loads). */
    static final boolean VECTOR = FB != null;
    private static final int G = PackedNibbles.G, BLOCK = Quant.BLOCK;
    /** Blocks of 32 per super-block of 256. */
    private static final int SUPER = KQuant.QK_K / BLOCK;
    /** Lane j of an F vector of blocks takes the d of its super-block: lane j / 8 of the d loaded from its first. */
    private static final VectorShuffle<Float> D_LANES = VectorShuffle.fromOp(F, j -> j / SUPER);
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(JavaKernels.LE);

    private final int groups;
    /** [3 shorts][row blocks][groups][2 sub-blocks h][n rows][2 halves][G]: the 6-bit values (layout above). */
    private final short[] values;
    /** Shorts per plane of values (one of S0, S1, S2 for the whole matrix): rows * groups * 4 G. */
    private final int plane;
    /** [row blocks][groups][2 sub-blocks][n rows][G]: each block's two sub-block scales. */
    private final byte[] scales;
    /** [row blocks][groups][n rows][G / 8]: each super-block's d (and F.length() zeros: a vector load from the last). */
    private final float[] d;

    private PackedQ6K(MemorySegment source, int rows, int cols) {
        super(WeightType.Q6_K, source, rows, cols);
        this.groups = (cols / BLOCK + G - 1) / G;
        int shorts = arrayLength((long) rows * groups * 12 * G, "shorts");
        this.values = new short[shorts];
        this.plane = shorts / 3;
        this.scales = new byte[rows * groups * 2 * G];
        this.d = new float[rows * groups * (G / SUPER) + F.length()]; // the last load reads F.length()
    }

    /** w [rows, cols] of Q6_K (cols a multiple of 256) repacked (on the heap), the rows spread over the pool. */
    static PackedQ6K pack(MemorySegment w, int rows, int cols, Parallel pool) {
        PackedQ6K p = new PackedQ6K(w, rows, cols);
        forEachSuperBlock(w, rows, cols, pool, p::putSuperBlock);
        return p;
    }

    /** Where a packing puts one super-block: blocks b .. b + 7 of row r, at byte at of w, its 256 values in q. */
    interface SuperBlockSink {
        void put(int r, int b, MemorySegment w, long at, byte[] q);
    }

    /**
     * Every Q6_K super-block of w [rows, cols] (cols a multiple of 256), its 6-bit values decoded ({@link #values6}),
     * handed to sink; the rows spread over the pool (each worker its own scratch q). Both Q6_K packings fill this way.
     */
    static void forEachSuperBlock(MemorySegment w, int rows, int cols, Parallel pool, SuperBlockSink sink) {
        long fileRowBytes = JavaPackedMatrix.fileRowBytes(WeightType.Q6_K, w, rows, cols);
        pool.forRange(rows, 1, (worker, from, to) -> {
            byte[] q = new byte[KQuant.QK_K];
            for (int r = from; r < to; r++) {
                long at = r * fileRowBytes;
                for (int sb = 0; sb < cols / KQuant.QK_K; sb++, at += WeightType.Q6_K.blockBytes) {
                    values6(w, at, q);
                    sink.put(r, sb * SUPER, w, at, q);
                }
            }
        });
    }

    /** The Q6_K super-block at byte at of w as blocks b .. b + 7 of row r (q: its 256 values). */
    private void putSuperBlock(int r, int b, MemorySegment w, long at, byte[] q) {
        int g = b / G, first = r / ROWS * ROWS, n = Math.min(ROWS, rows - first), row = r - first;
        d[first * groups * (G / SUPER) + (g * n + row) * (G / SUPER) + b % G / SUPER] = Float.float16ToFloat(w.get(Quant.U16_LE, at + 208));
        for (int i = 0; i < SUPER; i++) {
            int j = (b + i) % G;
            for (int h = 0; h < 2; h++) {
                scales[first * groups * 2 * G + ((g * 2 + h) * n + row) * G + j] = w.get(ValueLayout.JAVA_BYTE, at + 192 + 2 * i + h);
            }
            for (int s = 0; s < 4; s++) {
                int e = BLOCK * i + NibbleActivations.SLOT_OFFSET[s]; // q[e + k]: position k of the slot
                // the lane pair of block j: blocks j % (G / 2) of half j / (G / 2), slot h in the low short, h + 2 the high
                int lane = 2 * (j % (G / 2)) + s / 2;
                int o = first * groups * 4 * G + (g * 2 + s % 2) * n * 2 * G + (row * 2 + j / (G / 2)) * G + lane;
                values[o] = (short) (q[e] | (q[e + 6] & 15) << 6 | q[e + 1] << 10);
                values[o + plane] = (short) (q[e + 2] | (q[e + 7] & 15) << 6 | q[e + 3] << 10);
                values[o + 2 * plane] = (short) (q[e + 4] | (q[e + 6] >> 4 | (q[e + 7] >> 4) << 2) << 6 | q[e + 5] << 10);
            }
        }
    }

    /**
     * The 256 6-bit values of the Q6_K block at byte at into q. In each half block (128 values) byte l of the 64 of ql
     * holds the low 4 bits of elements l (low nibble) and l + 64 (high), byte l + 32 those of l + 32 and l + 96; byte
     * l of the 32 of qh their top 2 bits (bits 0-1, 2-3, 4-5, 6-7 for l, l + 32, l + 64, l + 96). Eight values at a
     * time in a long (no bit crosses a byte).
     */
    static void values6(MemorySegment w, long at, byte[] q) {
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l += 8) {
                long a = w.get(U64_LE, at + 64L * half + l), c = w.get(U64_LE, at + 64L * half + 32 + l);
                long h = w.get(U64_LE, at + 128 + 32L * half + l);
                int o = 128 * half + l;
                put8(q, o, (a & LOW4) | (h & 0x0303030303030303L) << 4);
                put8(q, o + 32, (c & LOW4) | (h & 0x0C0C0C0C0C0C0C0CL) << 2);
                put8(q, o + 64, (a >>> 4 & LOW4) | (h & 0x3030303030303030L));
                put8(q, o + 96, (c >>> 4 & LOW4) | (h >>> 2 & 0x3030303030303030L));
            }
        }
    }

    private static final long LOW4 = 0x0F0F0F0F0F0F0F0FL;

    private static void put8(byte[] q, int o, long bytes) {
        for (int i = 0; i < 8; i++) q[o + i] = (byte) (bytes >>> 8 * i);
    }

    @Override
    public long byteSize() {
        return 2L * values.length + scales.length + 4L * (d.length - F.length());
    }

    // ---------------------------------------------------------------------------------------------- prefill panels

    // ---------------------------------------------------------------------------------------------- decode

    /**
     * Rows per block of the layout and pass of the decode: their sums wait in a float[ROWS][F.length()] between groups.
     * Fewer rows pay the per-pass bounds checks (C2's loop predicates, ~40) more often: 8 was 1.3-1.7x slower than 32
     * (section 24).
     */
    static final int ROWS = 32;

    /**
     * Decode of one token: out[r] = w[r] . x for r in [rowStart, rowEnd), x quantized once per call (per thread), one
     * pass per block of the layout (the slice's first and last may take part of one), each reading the block's part of
     * the three value planes, its scales and d in order: five streams. dotRows is compiled on its own (too large to inline here), which costs
     * nothing: it takes and returns no vectors, so none is boxed.
     */
    @Override
    public void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
        NibbleActivations a = NibbleActivations.of(x, cols);
        short[] pairs = PAIRS.get();
        if (pairs.length < a.groups * 36 * G) {
            pairs = new short[a.groups * 36 * G];
            PAIRS.set(pairs);
        }
        int half = F.length();
        float[] sums = new float[ROWS * 2 * half], lanes = new float[half];
        for (int r = rowStart; r < rowEnd; ) {
            int first = r / ROWS * ROWS, n = Math.min(ROWS, rows - first), end = Math.min(n, rowEnd - first);
            dotRows(a, pairs, r == rowStart, first, n, r - first, end, sums);
            for (int i = r - first; i < end; i++) {
                FloatVector.fromArray(F, sums, 2 * i * half).add(FloatVector.fromArray(F, sums, (2 * i + 1) * half))
                        .intoArray(lanes, 0);
                out.setAtIndex(JavaKernels.F32, first + i, JavaKernels.sum(lanes, 0));
            }
            r = first + end;
        }
    }

    /** Per thread: x's values in the layout's lane pairs, [groups][2 h][2 halves][9][G] (see dotRows). */
    private static final ThreadLocal<short[]> PAIRS = ThreadLocal.withInitial(() -> new short[0]);
    /** Lane 2i of a pair vector takes lane i of the slot h vector, lane 2i + 1 lane i of the slot h + 2 one (as -G + i). */
    private static final VectorShuffle<Short> PAIR_LOW = VectorShuffle.fromOp(SV, l -> l % 2 == 0 ? l / 2 : l / 2 - SV.length());
    private static final VectorShuffle<Short> PAIR_HIGH = VectorShuffle.fromOp(SV, l -> l % 2 == 0 ? SV.length() / 2 + l / 2 : l / 2 - SV.length() / 2);
    private static final int LOW6 = 0x003F003F, NIBBLE = 0x000F000F, BITS45 = 0x00300030;

    /**
     * Rows first + i . x for i in [from, to) of the block of n rows at row first, into sums[(2 i + t) F.length()..]
     * (t: which half of the G blocks). Per group g and sub-block h and for each row, a short vector holds G / 2 blocks'
     * two slots of h (h and h + 2: the same scale) as lane pairs, so one int lane is one block: per slot -32 sum xq +
     * sum q xq in 16 bits that wrap, exactly sum (q - 32) xq; the pair's two shorts added as ints (the sub-block's sum),
     * times its int8 scale (|.| <= 65024 * 128 < 2^23, exact), converted to f32 and times d dx (two f16 values: exact)
     * added to sums: one rounding per sub-block and row. q0..q5 are one and (q0, q2, q4) or an int shift and an and
     * (q1, q3, q5: an int shift has an immediate count, a 16-bit one costs C2 a vmovd of its count each time), q6 and
     * q7 two shifts and two ands, or'ed. When fresh, x's values are first put in pairs[] in that lane order (here, not
     * in matvec: a method called once per product runs in C1, with boxed vectors, for thousands of calls).
     *
     * <p>Why rows innermost: the row loop is then a counted loop whose indices grow by constants (2 G shorts, G bytes,
     * G / 8 floats per row: powers of two; a stride such as 6 G, C2 multiplies by shifts and adds and then no longer
     * sees the index as linear in the row), so C2 moves the Vector API's bounds checks in front of it (loop
     * predication), and x's loads (the same for every row) need no check in it either: section 24. The loop bounds are
     * kept plain (t from 0). No helper methods: C2 stops inlining our calls in a kernel of this many vector operations
     * (NodeCountInliningCutoff) and then calls them with boxed vectors, 40x slower.
     */
    private void dotRows(NibbleActivations a, short[] pairs, boolean fresh, int first, int n, int from, int to, float[] sums) {
        short[] w = values, xq = a.xq;
        int half = F.length();
        if (fresh) { // pairs[((g 2 + h) 2 + t) 9 + k][G]: position k's x (k = 8: minus32), the blocks of half t
            for (int g = 0; g < a.groups; g++) {
                for (int h = 0; h < 2; h++) {
                    for (int k = 0; k < 9; k++) {
                        short[] src = k < 8 ? xq : a.minus32;
                        int lo = k < 8 ? ((g * 8 + k) * 4 + h) * G : (g * 4 + h) * G;
                        ShortVector low = ShortVector.fromArray(SV, src, lo), high = ShortVector.fromArray(SV, src, lo + 2 * G);
                        low.rearrange(PAIR_LOW, high).intoArray(pairs, (((g * 2 + h) * 2) * 9 + k) * G);
                        low.rearrange(PAIR_HIGH, high).intoArray(pairs, (((g * 2 + h) * 2 + 1) * 9 + k) * G);
                    }
                }
            }
        }
        Arrays.fill(sums, 2 * from * half, 2 * to * half, 0f);
        for (int g = 0; g < groups; g++) {
            for (int h = 0; h < 2; h++) {
                int vAt = first * groups * 4 * G + (g * 2 + h) * n * 2 * G, sAt = first * groups * 2 * G + (g * 2 + h) * n * G;
                int dAt = first * groups * (G / SUPER) + g * n * (G / SUPER), plane = this.plane;
                for (int i = from; i < to; i++) {
                    for (int t = 0; t < 2; t++) {
                        int at = vAt + i * (2 * G) + t * G, xo = ((g * 2 + h) * 2 + t) * 9 * G;
                        ShortVector s0 = ShortVector.fromArray(SV, w, at), s1 = ShortVector.fromArray(SV, w, at + plane);
                        ShortVector s2 = ShortVector.fromArray(SV, w, at + 2 * plane);
                        IntVector u0 = s0.reinterpretAsInts(), u1 = s1.reinterpretAsInts(), u2 = s2.reinterpretAsInts();
                        // four partial sums (a shorter chain of adds than one), all in 16 bits that wrap
                        ShortVector acc = ShortVector.fromArray(SV, pairs, xo + 8 * G).add(s0.and((short) 63).mul(ShortVector.fromArray(SV, pairs, xo)));
                        ShortVector acc1 = u0.lanewise(VectorOperators.LSHR, 10).and(LOW6).reinterpretAsShorts().mul(ShortVector.fromArray(SV, pairs, xo + G));
                        ShortVector acc2 = s1.and((short) 63).mul(ShortVector.fromArray(SV, pairs, xo + 2 * G));
                        ShortVector acc3 = u1.lanewise(VectorOperators.LSHR, 10).and(LOW6).reinterpretAsShorts().mul(ShortVector.fromArray(SV, pairs, xo + 3 * G));
                        acc = acc.add(s2.and((short) 63).mul(ShortVector.fromArray(SV, pairs, xo + 4 * G)));
                        acc1 = acc1.add(u2.lanewise(VectorOperators.LSHR, 10).and(LOW6).reinterpretAsShorts().mul(ShortVector.fromArray(SV, pairs, xo + 5 * G)));
                        IntVector q6 = u0.lanewise(VectorOperators.LSHR, 6).and(NIBBLE).or(u2.lanewise(VectorOperators.LSHR, 2).and(BITS45));
                        acc2 = acc2.add(q6.reinterpretAsShorts().mul(ShortVector.fromArray(SV, pairs, xo + 6 * G)));
                        IntVector q7 = u1.lanewise(VectorOperators.LSHR, 6).and(NIBBLE).or(u2.lanewise(VectorOperators.LSHR, 4).and(BITS45));
                        acc3 = acc3.add(q7.reinterpretAsShorts().mul(ShortVector.fromArray(SV, pairs, xo + 7 * G)));
                        acc = acc.add(acc1).add(acc2.add(acc3));
                        IntVector pair = acc.reinterpretAsInts(); // the block's two slot sums, each exact in its short
                        IntVector sum = pair.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(pair.lanewise(VectorOperators.ASHR, 16));
                        sum = sum.mul((IntVector) ByteVector.fromArray(FB, scales, sAt + i * G + t * half).convertShape(VectorOperators.B2I, JavaKernels.I, 0));
                        FloatVector ddx = FloatVector.fromArray(F, d, dAt + i * (G / SUPER) + t * (half / SUPER)).rearrange(D_LANES)
                                .mul(FloatVector.fromArray(F, a.dx, g * G + t * half));
                        int si = (2 * i + t) * half;
                        ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(ddx, FloatVector.fromArray(F, sums, si)).intoArray(sums, si);
                    }
                }
            }
        }
    }
}
