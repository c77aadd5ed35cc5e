package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q4_K and Q4_0 weights repacked at load into one 4-bit layout for the Java backend: every block of 32 weights is
 * 24 bytes, {@code [f32 scale][f32 offset][16 bytes of nibbles]}, byte l holding weight l (low nibble) and l + 16
 * (high), and weight = scale * q + offset, q in 0..15. Rows are [cols / 32] such blocks, one after the other.
 * <ul>
 *   <li>Q4_K sub-block j of a super-block: scale {@code d * sc_j}, offset {@code -(dmin * m_j)}; its nibbles move from
 *       the file's order (sub-blocks 2g and 2g + 1 share the low and high nibbles of 32 bytes) to the one above.
 *   <li>Q4_0: scale {@code d}, offset {@code -8 d}, nibbles as in the file.
 * </ul>
 * Every product {@code scale * q} and {@code dmin * m_j} is exact in f32 (an f16 times at most 6 + 4 bits), so one
 * rounding of {@code scale * q + offset} gives exactly gguf-py's {@code (d sc) q - dmin m} and {@code (q - 8) d}
 * ({@link KQuant#dequantizeRow}, {@link Quant#dequantizeRow}): an FMA or a multiply then an add, the same value
 * (only the sign of a zero can differ: a Q4_0 weight 0 with d &lt; 0 is -0 there, +0 here; no sum changes).
 * The decode kernel then needs no f16 conversion and no 6-bit unpacking per block.
 */
final class PackedQ4 implements PackedMatrix, JavaKernels.PanelSource {

    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 24;
    private static final int NIBBLES_AT = 8;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort U16_LE = Quant.U16_LE;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    /** As many bytes as F has floats: 16 bytes for 16 lanes, 8 for 8 (none below 256-bit vectors). */
    private static final VectorSpecies<Byte> FB = F.vectorBitSize() >= 256
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4)) : null;
    /** The vector kernels take a block's 16 nibble bytes in one or two steps: 256- and 512-bit F. */
    private static final boolean VECTOR = FB != null && F.length() <= 16;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;

    private final WeightType sourceType;
    private final int rows, cols;
    private final long rowBytes;
    /** [rows][cols / 32] blocks of 24 bytes (layout above). */
    private final MemorySegment data;

    private PackedQ4(WeightType sourceType, int rows, int cols, MemorySegment data) {
        this.sourceType = sourceType;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = (long) cols / BLOCK * BLOCK_BYTES;
        this.data = data;
    }

    static boolean packs(WeightType type) {
        return type == WeightType.Q4_K || type == WeightType.Q4_0;
    }

    /** w [rows, cols] of Q4_K or Q4_0 repacked into memory of {@code arena}, the rows spread over the pool's threads. */
    static PackedQ4 pack(WeightType type, MemorySegment w, int rows, int cols, Parallel pool, Arena arena) {
        if (!packs(type)) throw new IllegalArgumentException(type + " is not packed as 4-bit blocks");
        long fileRowBytes = type.rowBytes(cols); // refuses rows that are not whole blocks
        if (w.byteSize() < rows * fileRowBytes) {
            throw new IllegalArgumentException(type + " matrix [" + rows + ", " + cols + "] needs " + rows * fileRowBytes
                    + " bytes, got " + w.byteSize());
        }
        PackedQ4 p = new PackedQ4(type, rows, cols, arena.allocate((long) rows * cols / BLOCK * BLOCK_BYTES, 64));
        pool.forRange(rows, 1, (worker, from, to) -> {
            for (int r = from; r < to; r++) {
                long src = r * fileRowBytes, dst = r * p.rowBytes;
                if (type == WeightType.Q4_K) {
                    for (int b = 0; b < cols / KQuant.QK_K; b++) packQ4_K(w, src + b * 144L, p.data, dst + b * 8L * BLOCK_BYTES);
                } else {
                    for (int b = 0; b < cols / BLOCK; b++) packQ4_0(w, src + b * 18L, p.data, dst + b * (long) BLOCK_BYTES);
                }
            }
        });
        return p;
    }

    private static void packQ4_0(MemorySegment w, long at, MemorySegment out, long o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at));
        out.set(F32, o, d);
        out.set(F32, o + 4, -8 * d);
        MemorySegment.copy(w, at + 2, out, o + NIBBLES_AT, 16);
    }

    /** The super-block at byte at (144 bytes) as eight 24-byte blocks from byte o. */
    private static void packQ4_K(MemorySegment w, long at, MemorySegment out, long o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at)), dmin = Float.float16ToFloat(w.get(U16_LE, at + 2));
        for (int g = 0; g < 4; g++) { // 32 bytes of nibbles: sub-block 2g low, 2g + 1 high
            ByteVector first = ByteVector.fromMemorySegment(B128, w, at + 16 + 32L * g, LE);  // elements 0-15 of each
            ByteVector second = ByteVector.fromMemorySegment(B128, w, at + 32 + 32L * g, LE); // elements 16-31
            long lo = o + 2L * g * BLOCK_BYTES, hi = lo + BLOCK_BYTES;
            first.and((byte) 0x0F).or(second.lanewise(VectorOperators.LSHL, 4)).intoMemorySegment(out, lo + NIBBLES_AT, LE);
            first.lanewise(VectorOperators.LSHR, 4).or(second.and((byte) 0xF0)).intoMemorySegment(out, hi + NIBBLES_AT, LE);
            for (int j = 2 * g; j <= 2 * g + 1; j++) {
                long b = o + (long) j * BLOCK_BYTES;
                out.set(F32, b, d * KQuant.q4kScale(w, at, j));
                out.set(F32, b + 4, -(dmin * KQuant.q4kMin(w, at, j)));
            }
        }
    }

    @Override
    public WeightType sourceType() {
        return sourceType;
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
        return data.byteSize();
    }

    @Override
    public String toString() {
        return "PackedQ4[" + sourceType + " " + rows + "x" + cols + "]";
    }

    // ---------------------------------------------------------------------------------------------- prefill panels

    /** The GEMM's panel widening: dst[dstOff, dstOff + n) = weights [k0, k0 + n) of row {@code row} (whole blocks). */
    @Override
    public void widenRow(int row, int k0, int n, float[] dst, int dstOff) {
        long at = row * rowBytes + (long) k0 / BLOCK * BLOCK_BYTES;
        for (int o = dstOff; o < dstOff + n; o += BLOCK, at += BLOCK_BYTES) {
            float scale = data.get(F32, at), offset = data.get(F32, at + 4);
            if (!VECTOR) {
                for (int l = 0; l < 16; l++) {
                    int q = data.get(ValueLayout.JAVA_BYTE, at + NIBBLES_AT + l);
                    dst[o + l] = scale * (q & 0x0F) + offset;
                    dst[o + 16 + l] = scale * ((q >> 4) & 0x0F) + offset;
                }
                continue;
            }
            FloatVector s = FloatVector.broadcast(F, scale), b = FloatVector.broadcast(F, offset);
            for (int l = 0; l < 16; l += F.length()) {
                IntVector q = nibbles(at + NIBBLES_AT + l);
                ((FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0)).fma(s, b).intoArray(dst, o + l);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0x0F).convert(VectorOperators.I2F, 0)).fma(s, b)
                        .intoArray(dst, o + 16 + l);
            }
        }
    }

    private IntVector nibbles(long off) {
        return (IntVector) ByteVector.fromMemorySegment(FB, data, off, LE).convertShape(VectorOperators.B2I, I, 0);
    }

    // ---------------------------------------------------------------------------------------------- decode

    /** Per-thread copy of the token's activations: the kernel compiles better from an array than from a segment. */
    private static final ThreadLocal<float[]> X = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Decode of one token: out[r] = w[r] . x for r in [rowStart, rowEnd). Four rows per pass, a quarter of the slice
     * apart (each streams from its own pages, as every Java decode since docs/performance-java.md section 5); the at
     * most three rows left over each take a pass of their own with all four "rows" the same (written four times), so
     * there is one call site and C2 compiles one copy of the kernel.
     */
    void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
        float[] xf = X.get();
        if (xf.length < cols) {
            xf = new float[cols];
            X.set(xf);
        }
        MemorySegment.copy(x, F32, 0, xf, 0, cols);
        int gap = (rowEnd - rowStart) / 4, passes = gap + (rowEnd - rowStart) % 4;
        for (int p = 0; p < passes; p++) {
            int row = p < gap ? rowStart + p : rowStart + 3 * gap + p, step = p < gap ? gap : 0;
            if (VECTOR) dot4Rows(xf, out, row, step);
            else dot4RowsScalar(xf, out, row, step);
        }
    }

    /** Lane i holds i as a float: the nibble values a table is built from. */
    private static final FloatVector NIBBLE_VALUES = FloatVector.zero(F).addIndex(1);
    /**
     * With 16 int lanes a nibble becomes its weight by a look-up in the block's table of 16 values
     * (scale * q + offset, q = 0..15: one FMA per row and block), a two-table permute whose index wraps modulo 32, so the
     * sign-extended byte and the shifted one index the same table twice without a mask. With 8 lanes (AVX2) the
     * 16-entry permute is not one instruction: the nibbles are masked, converted and scaled (the same values).
     */
    private static final boolean LOOKUP = I.length() == 16;

    /**
     * Rows row, row + gap, row + 2 gap, row + 3 gap . x into out. Written out without helper methods: C2 must inline
     * every Vector API call of the four rows, or it boxes the vectors (50x slower; docs/performance-java.md 5-6).
     */
    private void dot4Rows(float[] x, MemorySegment out, int row, int gap) {
        MemorySegment w = data;
        // two accumulators per row (low and high nibbles): one FMA per block in each chain, not two in a row (an FMA
        // chain of one accumulator held the old kernels at its latency, ~4 cycles per FMA)
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, h0 = a0, h1 = a0, h2 = a0, h3 = a0;
        long at0 = row * rowBytes, at1 = at0 + gap * rowBytes, at2 = at1 + gap * rowBytes, at3 = at2 + gap * rowBytes;
        int blocks = cols / BLOCK;
        for (int b = 0; b < blocks; b++, at0 += BLOCK_BYTES, at1 += BLOCK_BYTES, at2 += BLOCK_BYTES, at3 += BLOCK_BYTES) {
            FloatVector s0 = FloatVector.broadcast(F, w.get(F32, at0)), c0 = FloatVector.broadcast(F, w.get(F32, at0 + 4));
            FloatVector s1 = FloatVector.broadcast(F, w.get(F32, at1)), c1 = FloatVector.broadcast(F, w.get(F32, at1 + 4));
            FloatVector s2 = FloatVector.broadcast(F, w.get(F32, at2)), c2 = FloatVector.broadcast(F, w.get(F32, at2 + 4));
            FloatVector s3 = FloatVector.broadcast(F, w.get(F32, at3)), c3 = FloatVector.broadcast(F, w.get(F32, at3 + 4));
            if (LOOKUP) {
                IntVector t0 = NIBBLE_VALUES.fma(s0, c0).reinterpretAsInts(), t1 = NIBBLE_VALUES.fma(s1, c1).reinterpretAsInts();
                IntVector t2 = NIBBLE_VALUES.fma(s2, c2).reinterpretAsInts(), t3 = NIBBLE_VALUES.fma(s3, c3).reinterpretAsInts();
                FloatVector xl = FloatVector.fromArray(F, x, BLOCK * b), xh = FloatVector.fromArray(F, x, BLOCK * b + 16);
                IntVector n0 = (IntVector) ByteVector.fromMemorySegment(FB, w, at0 + NIBBLES_AT, LE).convertShape(VectorOperators.B2I, I, 0);
                IntVector n1 = (IntVector) ByteVector.fromMemorySegment(FB, w, at1 + NIBBLES_AT, LE).convertShape(VectorOperators.B2I, I, 0);
                IntVector n2 = (IntVector) ByteVector.fromMemorySegment(FB, w, at2 + NIBBLES_AT, LE).convertShape(VectorOperators.B2I, I, 0);
                IntVector n3 = (IntVector) ByteVector.fromMemorySegment(FB, w, at3 + NIBBLES_AT, LE).convertShape(VectorOperators.B2I, I, 0);
                a0 = n0.selectFrom(t0, t0).reinterpretAsFloats().fma(xl, a0);
                a1 = n1.selectFrom(t1, t1).reinterpretAsFloats().fma(xl, a1);
                a2 = n2.selectFrom(t2, t2).reinterpretAsFloats().fma(xl, a2);
                a3 = n3.selectFrom(t3, t3).reinterpretAsFloats().fma(xl, a3);
                h0 = n0.lanewise(VectorOperators.ASHR, 4).selectFrom(t0, t0).reinterpretAsFloats().fma(xh, h0);
                h1 = n1.lanewise(VectorOperators.ASHR, 4).selectFrom(t1, t1).reinterpretAsFloats().fma(xh, h1);
                h2 = n2.lanewise(VectorOperators.ASHR, 4).selectFrom(t2, t2).reinterpretAsFloats().fma(xh, h2);
                h3 = n3.lanewise(VectorOperators.ASHR, 4).selectFrom(t3, t3).reinterpretAsFloats().fma(xh, h3);
            } else {
                for (int l = 0; l < 16; l += F.length()) {
                    FloatVector xl = FloatVector.fromArray(F, x, BLOCK * b + l), xh = FloatVector.fromArray(F, x, BLOCK * b + 16 + l);
                    IntVector n0 = (IntVector) ByteVector.fromMemorySegment(FB, w, at0 + NIBBLES_AT + l, LE).convertShape(VectorOperators.B2I, I, 0);
                    IntVector n1 = (IntVector) ByteVector.fromMemorySegment(FB, w, at1 + NIBBLES_AT + l, LE).convertShape(VectorOperators.B2I, I, 0);
                    IntVector n2 = (IntVector) ByteVector.fromMemorySegment(FB, w, at2 + NIBBLES_AT + l, LE).convertShape(VectorOperators.B2I, I, 0);
                    IntVector n3 = (IntVector) ByteVector.fromMemorySegment(FB, w, at3 + NIBBLES_AT + l, LE).convertShape(VectorOperators.B2I, I, 0);
                    a0 = ((FloatVector) n0.and(0x0F).convert(VectorOperators.I2F, 0)).fma(s0, c0).fma(xl, a0);
                    a1 = ((FloatVector) n1.and(0x0F).convert(VectorOperators.I2F, 0)).fma(s1, c1).fma(xl, a1);
                    a2 = ((FloatVector) n2.and(0x0F).convert(VectorOperators.I2F, 0)).fma(s2, c2).fma(xl, a2);
                    a3 = ((FloatVector) n3.and(0x0F).convert(VectorOperators.I2F, 0)).fma(s3, c3).fma(xl, a3);
                    h0 = ((FloatVector) n0.lanewise(VectorOperators.ASHR, 4).and(0x0F).convert(VectorOperators.I2F, 0)).fma(s0, c0).fma(xh, h0);
                    h1 = ((FloatVector) n1.lanewise(VectorOperators.ASHR, 4).and(0x0F).convert(VectorOperators.I2F, 0)).fma(s1, c1).fma(xh, h1);
                    h2 = ((FloatVector) n2.lanewise(VectorOperators.ASHR, 4).and(0x0F).convert(VectorOperators.I2F, 0)).fma(s2, c2).fma(xh, h2);
                    h3 = ((FloatVector) n3.lanewise(VectorOperators.ASHR, 4).and(0x0F).convert(VectorOperators.I2F, 0)).fma(s3, c3).fma(xh, h3);
                }
            }
        }
        out.setAtIndex(F32, row, a0.add(h0).reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, row + gap, a1.add(h1).reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, row + 2 * gap, a2.add(h2).reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, row + 3 * gap, a3.add(h3).reduceLanes(VectorOperators.ADD));
    }

    /** {@link #dot4Rows} for machines without 256-bit vectors: one row after the other, in plain loops. */
    private void dot4RowsScalar(float[] x, MemorySegment out, int row, int gap) {
        for (int k = 0; k < 4; k++) {
            long at = (row + (long) k * gap) * rowBytes;
            float s = 0;
            for (int b = 0; b < cols / BLOCK; b++, at += BLOCK_BYTES) {
                float scale = data.get(F32, at), offset = data.get(F32, at + 4);
                for (int l = 0; l < 16; l++) {
                    int q = data.get(ValueLayout.JAVA_BYTE, at + NIBBLES_AT + l);
                    s += (scale * (q & 0x0F) + offset) * x[BLOCK * b + l];
                    s += (scale * ((q >> 4) & 0x0F) + offset) * x[BLOCK * b + 16 + l];
                }
            }
            out.setAtIndex(F32, row + k * gap, s);
        }
    }
}
