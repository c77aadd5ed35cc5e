package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A Q6_K matrix repacked at load for the Java backend's 16-bit products, one block of 32 weights per short lane as
 * {@link PackedNibbles} (docs/performance-java.md section 20), so that it multiplies the same activations
 * ({@link NibbleActivations}: x quantized per block of 32 as native's Q8_0, in lane = block order).
 *
 * <p>A 16-bit lane holds a sum of 8 products exactly ((q - 32) xq: 8 * 32 * 127 = 32512), not 32, so each block's 32
 * weights go as NibbleActivations' four slots of 8 (slot 0: weights 0-7, 1: 16-23, 2: 8-15, 3: 24-31, the order
 * {@link NibbleActivations#SLOT_OFFSET} gives), each slot's 8 values q0..q7 (0..63, position k of the slot) in three
 * shorts: {@code S0 = q0 | (q6 & 15) << 6 | q1 << 10}, {@code S1 = q2 | (q7 & 15) << 6 | q3 << 10},
 * {@code S2 = q4 | (q6 >> 4 | (q7 >> 4) << 2) << 6 | q5 << 10}: q0..q5 cost one and / shift each, q6 and q7 five
 * (section 19's encoding). Slots 0 and 2 are the block's first sub-block of 16 (one int8 scale), 1 and 3 its second.
 * Per row and group of G blocks: [4 slots][3][G] shorts, [2 sub-blocks][G] int8 scales; per super-block of 256 its d
 * as f32: 212 bytes per 256 weights (the file: 210), plus the zero blocks that pad a row's last group.
 *
 * <p>Per lane and slot the kernel starts from {@code -32 sum xq} (NibbleActivations' {@code minus32}) and adds
 * {@code q xq} in 16 bits that wrap: the end is exactly {@code sum (q - 32) xq}. The two slots of a sub-block are added
 * as ints, converted to f32 once and multiplied by {@code ((d scale) dx)}: d scale is the file's weight scale exactly
 * (f16 times int8), so each term is (weight) x (rounded x) up to f32 rounding of the sums.
 *
 * <p>The prefill GEMM widens the file's own bytes ({@link KQuant#widen}, vector code): a block keeps its weights
 * together there, where this layout spreads them over 12 vectors (section 19's widening from it was 1.47x slower).
 * On the Java heap, as PackedNibbles (segment loads share a type profile with the mapped file: section 12).
 */
final class PackedQ6K implements JavaPackedMatrix {

    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Short> SV = PackedNibbles.SV;
    /** F.length() int8 scales per load (null below 256-bit F: then the model reads Q6_K in the file's layout). */
    private static final VectorSpecies<Byte> FB = JavaKernels.QB;
    /** Whether this layout is used: 256- and 512-bit vectors (G >= 16, F.length() int8 loads). */
    static final boolean VECTOR = FB != null;
    private static final int G = PackedNibbles.G, BLOCK = Quant.BLOCK;
    /** Blocks of 32 per super-block of 256. */
    private static final int SUPER = KQuant.QK_K / BLOCK;
    /** Lane j of an F vector of blocks reads the d of its super-block: j / 8 (plus the vector's first block / 8). */
    private static final int[] D_MAP = dMap();
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(JavaKernels.LE);

    /** The file's bytes of the matrix (mapped by the model, alive as long as it is): what the GEMM widens. */
    private final MemorySegment source;
    private final int rows, cols, groups;
    /** [rows][groups][4 slots][3][G]: the 6-bit values (layout above). */
    private final short[] values;
    /** [rows][groups][2][G]: each block's two sub-block scales. */
    private final byte[] scales;
    /** [rows][groups][G / 8]: each super-block's d. */
    private final float[] d;

    private PackedQ6K(MemorySegment source, int rows, int cols) {
        this.source = source;
        this.rows = rows;
        this.cols = cols;
        this.groups = (cols / BLOCK + G - 1) / G;
        long shorts = (long) rows * groups * 12 * G;
        if (shorts > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("Q6_K matrix " + rows + "x" + cols + " is too large to pack (" + shorts
                    + " shorts, at most 2^31 - 9)");
        }
        this.values = new short[(int) shorts];
        this.scales = new byte[rows * groups * 2 * G];
        this.d = new float[rows * groups * (G / SUPER)];
    }

    /** w [rows, cols] of Q6_K (cols a multiple of 256) repacked (on the heap), the rows spread over the pool. */
    static PackedQ6K pack(MemorySegment w, int rows, int cols, Parallel pool) {
        long fileRowBytes = WeightType.Q6_K.rowBytes(cols); // refuses cols that are not whole blocks
        if (w.byteSize() < rows * fileRowBytes) {
            throw new IllegalArgumentException("Q6_K matrix of " + rows + "x" + cols + " needs " + rows * fileRowBytes
                    + " bytes, got " + w.byteSize());
        }
        PackedQ6K p = new PackedQ6K(w, rows, cols);
        pool.forRange(rows, 1, (worker, from, to) -> {
            byte[] q = new byte[KQuant.QK_K];
            for (int r = from; r < to; r++) {
                long at = r * fileRowBytes;
                for (int sb = 0; sb < cols / KQuant.QK_K; sb++, at += WeightType.Q6_K.blockBytes) {
                    p.putSuperBlock(r, sb * SUPER, w, at, q);
                }
            }
        });
        return p;
    }

    /** The Q6_K super-block at byte at of w as blocks b .. b + 7 of row r (q: scratch for its 256 values). */
    private void putSuperBlock(int r, int b, MemorySegment w, long at, byte[] q) {
        values6(w, at, q);
        int g = b / G;
        d[(r * groups + g) * (G / SUPER) + b % G / SUPER] = Float.float16ToFloat(w.get(Quant.U16_LE, at + 208));
        for (int i = 0; i < SUPER; i++) {
            int j = (b + i) % G;
            for (int h = 0; h < 2; h++) scales[((r * groups + g) * 2 + h) * G + j] = w.get(ValueLayout.JAVA_BYTE, at + 192 + 2 * i + h);
            for (int s = 0; s < 4; s++) {
                int e = BLOCK * i + NibbleActivations.SLOT_OFFSET[s]; // q[e + k]: position k of the slot
                int o = ((r * groups + g) * 4 + s) * 3 * G + j;
                values[o] = (short) (q[e] | (q[e + 6] & 15) << 6 | q[e + 1] << 10);
                values[o + G] = (short) (q[e + 2] | (q[e + 7] & 15) << 6 | q[e + 3] << 10);
                values[o + 2 * G] = (short) (q[e + 4] | (q[e + 6] >> 4 | (q[e + 7] >> 4) << 2) << 6 | q[e + 5] << 10);
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

    private static int[] dMap() {
        int[] map = new int[G];
        for (int j = 0; j < G; j++) map[j] = j / SUPER;
        return map;
    }

    @Override
    public WeightType sourceType() {
        return WeightType.Q6_K;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public long byteSize() {
        return 2L * values.length + scales.length + 4L * d.length;
    }

    @Override
    public String toString() {
        return "PackedQ6K[" + rows + "x" + cols + "]";
    }

    // ---------------------------------------------------------------------------------------------- prefill panels

    /** The GEMM's panel widening, from the file's bytes: the dequantized values bit for bit (col, n: whole blocks). */
    @Override
    public void widen(int row, int col, int n, float[] dst, int dstOff) {
        JavaKernels.widenRow(WeightType.Q6_K, source, (long) row * cols + col, n, dst, dstOff);
    }

    // ---------------------------------------------------------------------------------------------- decode

    /**
     * Decode of one token: out[r] = w[r] . x for r in [rowStart, rowEnd), x quantized once per call (per thread). Four
     * rows per pass a quarter of the slice apart, the at most three left over each in a pass of their own with all
     * four "rows" the same (one call site: C2 compiles one copy of the kernel), as PackedNibbles.
     */
    @Override
    public void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
        NibbleActivations a = NibbleActivations.of(x, cols);
        int gap = (rowEnd - rowStart) / 4, passes = gap + (rowEnd - rowStart) % 4;
        for (int p = 0; p < passes; p++) {
            int row = p < gap ? rowStart + p : rowStart + 3 * gap + p, step = p < gap ? gap : 0;
            dot4Rows(a, out, row, step);
        }
    }

    /** Rows row, row + gap, row + 2 gap, row + 3 gap . x into out: per group, each row's four slots, then its f32 sum. */
    private void dot4Rows(NibbleActivations a, MemorySegment out, int row, int gap) {
        short[] w = values, xq = a.xq, m32 = a.minus32;
        FloatVector f0 = FloatVector.zero(F), f1 = f0, f2 = f0, f3 = f0;
        int rowShorts = groups * 12 * G;
        for (int g = 0; g < groups; g++) {
            int w0 = row * rowShorts + g * 12 * G, w1 = w0 + gap * rowShorts, w2 = w1 + gap * rowShorts, w3 = w2 + gap * rowShorts;
            int xo = g * 32 * G, mo = g * 4 * G;
            f0 = rowSum(f0, slot(w, w0, xq, xo, m32, mo), slot(w, w0 + 3 * G, xq, xo + G, m32, mo + G),
                    slot(w, w0 + 6 * G, xq, xo + 2 * G, m32, mo + 2 * G), slot(w, w0 + 9 * G, xq, xo + 3 * G, m32, mo + 3 * G), a, row, g);
            f1 = rowSum(f1, slot(w, w1, xq, xo, m32, mo), slot(w, w1 + 3 * G, xq, xo + G, m32, mo + G),
                    slot(w, w1 + 6 * G, xq, xo + 2 * G, m32, mo + 2 * G), slot(w, w1 + 9 * G, xq, xo + 3 * G, m32, mo + 3 * G), a, row + gap, g);
            f2 = rowSum(f2, slot(w, w2, xq, xo, m32, mo), slot(w, w2 + 3 * G, xq, xo + G, m32, mo + G),
                    slot(w, w2 + 6 * G, xq, xo + 2 * G, m32, mo + 2 * G), slot(w, w2 + 9 * G, xq, xo + 3 * G, m32, mo + 3 * G), a, row + 2 * gap, g);
            f3 = rowSum(f3, slot(w, w3, xq, xo, m32, mo), slot(w, w3 + 3 * G, xq, xo + G, m32, mo + G),
                    slot(w, w3 + 6 * G, xq, xo + 2 * G, m32, mo + 2 * G), slot(w, w3 + 9 * G, xq, xo + 3 * G, m32, mo + 3 * G), a, row + 3 * gap, g);
        }
        out.setAtIndex(JavaKernels.F32, row, f0.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(JavaKernels.F32, row + gap, f1.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(JavaKernels.F32, row + 2 * gap, f2.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(JavaKernels.F32, row + 3 * gap, f3.reduceLanes(VectorOperators.ADD));
    }

    /**
     * One slot of every lane's block: -32 sum xq + sum q xq over its 8 positions (three shorts of values at w[at..],
     * x at xq[xo + 4 G k], the start at m32[mo]) in 16 bits that wrap, i.e. exactly sum (q - 32) xq.
     */
    private static ShortVector slot(short[] w, int at, short[] xq, int xo, short[] m32, int mo) {
        ShortVector s0 = ShortVector.fromArray(SV, w, at), s1 = ShortVector.fromArray(SV, w, at + G);
        ShortVector s2 = ShortVector.fromArray(SV, w, at + 2 * G);
        ShortVector acc = ShortVector.fromArray(SV, m32, mo);
        acc = acc.add(s0.and((short) 63).mul(ShortVector.fromArray(SV, xq, xo)));
        acc = acc.add(s0.lanewise(VectorOperators.LSHR, 10).mul(ShortVector.fromArray(SV, xq, xo + 4 * G)));
        acc = acc.add(s1.and((short) 63).mul(ShortVector.fromArray(SV, xq, xo + 8 * G)));
        acc = acc.add(s1.lanewise(VectorOperators.LSHR, 10).mul(ShortVector.fromArray(SV, xq, xo + 12 * G)));
        acc = acc.add(s2.and((short) 63).mul(ShortVector.fromArray(SV, xq, xo + 16 * G)));
        acc = acc.add(s2.lanewise(VectorOperators.LSHR, 10).mul(ShortVector.fromArray(SV, xq, xo + 20 * G)));
        ShortVector q6 = s0.lanewise(VectorOperators.LSHR, 6).and((short) 15).or(s2.lanewise(VectorOperators.LSHR, 2).and((short) 0x30));
        acc = acc.add(q6.mul(ShortVector.fromArray(SV, xq, xo + 24 * G)));
        ShortVector q7 = s1.lanewise(VectorOperators.LSHR, 6).and((short) 15).or(s2.lanewise(VectorOperators.LSHR, 4).and((short) 0x30));
        return acc.add(q7.mul(ShortVector.fromArray(SV, xq, xo + 28 * G)));
    }

    /**
     * f + the group's f32 terms of row r: per block (lane), for sub-blocks 0 (slots 0 and 2) and 1 (slots 1 and 3),
     * (slot sum + slot sum as an int) times ((d scale) dx), the G lanes as two F vectors.
     */
    private FloatVector rowSum(FloatVector f, ShortVector slot0, ShortVector slot1, ShortVector slot2, ShortVector slot3,
                               NibbleActivations a, int r, int g) {
        for (int part = 0; part < 2; part++) {
            int block = g * G + part * F.length();
            int sc = (r * groups + g) * 2 * G + part * F.length();
            IntVector sum0 = ((IntVector) slot0.convertShape(VectorOperators.S2I, JavaKernels.I, part))
                    .add((IntVector) slot2.convertShape(VectorOperators.S2I, JavaKernels.I, part));
            IntVector sum1 = ((IntVector) slot1.convertShape(VectorOperators.S2I, JavaKernels.I, part))
                    .add((IntVector) slot3.convertShape(VectorOperators.S2I, JavaKernels.I, part));
            FloatVector dv = FloatVector.fromArray(F, d, (r * groups + g) * (G / SUPER), D_MAP, part * F.length());
            FloatVector dx = FloatVector.fromArray(F, a.dx, block);
            FloatVector scale0 = (FloatVector) ByteVector.fromArray(FB, scales, sc).convertShape(VectorOperators.B2F, F, 0);
            FloatVector scale1 = (FloatVector) ByteVector.fromArray(FB, scales, sc + G).convertShape(VectorOperators.B2F, F, 0);
            f = ((FloatVector) sum0.convert(VectorOperators.I2F, 0)).fma(scale0.mul(dv).mul(dx), f);
            f = ((FloatVector) sum1.convert(VectorOperators.I2F, 0)).fma(scale1.mul(dv).mul(dx), f);
        }
        return f;
    }
}
