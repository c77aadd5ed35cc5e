package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Q4_K weights repacked at load for the Java backend: every sub-block of 32 weights becomes 24 bytes,
 * {@code [f32 scale][f32 offset][16 bytes of nibbles]}, byte l holding weight l (low nibble) and l + 16 (high), and
 * weight = scale * q + offset, q in 0..15: sub-block j of a super-block has scale {@code d * sc_j} and offset
 * {@code -(dmin * m_j)}, and its nibbles move from the file's order (sub-blocks 2g and 2g + 1 share the low and high
 * nibbles of 32 bytes) to the one above. Rows are [cols / 32] such blocks, one after the other (192 bytes per 256
 * weights against the file's 144). Every product {@code scale * q} and {@code dmin * m_j} is exact in f32 (an f16
 * times at most 6 + 4 bits), so {@code scale * q + offset} (one rounding, FMA or not) is exactly gguf-py's
 * {@code (d sc) q - dmin m} ({@link KQuant#dequantizeRow}). The decode kernel then needs no f16 conversion and no
 * 6-bit unpacking per block: 1.5-1.9x faster per kernel than KQuant's file-layout decode (docs/performance-java.md
 * section 12). Q4_0 in this layout measured 3-10% slower than JavaKernels' Q4_0 decode and reads 24 bytes per 32
 * weights instead of 18, so Q4_0 is not packed.
 */
final class PackedQ4 implements JavaPackedMatrix {

    static final int BLOCK = 32;
    static final int BLOCK_BYTES = 24;
    private static final int NIBBLES_AT = 8;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    /** An f32 (scale, offset) at a byte index of the packed array. */
    private static final VarHandle F32_AT = MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16_LE = Quant.U16_LE;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    /** As many bytes as F has floats: 16 bytes for 16 lanes, 8 for 8 (none below 256-bit vectors). */
    private static final VectorSpecies<Byte> FB = JavaKernels.QB;
    /** The vector kernels take a block's 16 nibble bytes in one or two steps: 256- and 512-bit F. */
    private static final boolean VECTOR = FB != null && F.length() <= 16;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;

    private final WeightType sourceType;
    private final int rows, cols;
    private final int rowBytes;
    /**
     * [rows][cols / 32] blocks of 24 bytes (layout above), on the Java heap: the Vector API's loads from a
     * MemorySegment share one type profile with every other segment the process reads (the model's mapped file), and
     * with native segments in the mix C2 compiled this kernel's loads as calls (2x slower in the full model, fast in
     * a harness that had only native segments). Array loads have no such profile.
     */
    private final byte[] data;

    private PackedQ4(WeightType sourceType, int rows, int cols, byte[] data) {
        this.sourceType = sourceType;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = cols / BLOCK * BLOCK_BYTES;
        this.data = data;
    }

    static boolean packs(WeightType type) {
        return type == WeightType.Q4_K;
    }

    /** w [rows, cols] of Q4_K repacked (on the heap), the rows spread over the pool's threads. */
    static PackedQ4 pack(WeightType type, MemorySegment w, int rows, int cols, Parallel pool) {
        if (!packs(type)) throw new IllegalArgumentException(type + " is not packed by PackedQ4");
        long fileRowBytes = type.rowBytes(cols); // refuses rows that are not whole blocks
        if (w.byteSize() < rows * fileRowBytes) {
            throw new IllegalArgumentException(type + " matrix [" + rows + ", " + cols + "] needs " + rows * fileRowBytes
                    + " bytes, got " + w.byteSize());
        }
        long bytes = (long) rows * cols / BLOCK * BLOCK_BYTES;
        if (bytes > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(type + " matrix [" + rows + ", " + cols + "] is too large to pack (" + bytes
                    + " bytes, at most 2^31 - 9)");
        }
        PackedQ4 p = new PackedQ4(type, rows, cols, new byte[(int) bytes]);
        pool.forRange(rows, 1, (worker, from, to) -> {
            for (int r = from; r < to; r++) {
                long src = r * fileRowBytes;
                int dst = r * p.rowBytes;
                for (int b = 0; b < cols / KQuant.QK_K; b++) {
                    packQ4_K(w, src + b * (long) type.blockBytes, p.data, dst + b * 8 * BLOCK_BYTES);
                }
            }
        });
        return p;
    }

    /** The super-block at byte at (144 bytes) as eight 24-byte blocks from byte o. */
    private static void packQ4_K(MemorySegment w, long at, byte[] out, int o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at)), dmin = Float.float16ToFloat(w.get(U16_LE, at + 2));
        for (int g = 0; g < 4; g++) { // 32 bytes of nibbles: sub-block 2g low, 2g + 1 high
            ByteVector first = ByteVector.fromMemorySegment(B128, w, at + 16 + 32L * g, LE);  // elements 0-15 of each
            ByteVector second = ByteVector.fromMemorySegment(B128, w, at + 32 + 32L * g, LE); // elements 16-31
            int lo = o + 2 * g * BLOCK_BYTES, hi = lo + BLOCK_BYTES;
            first.and((byte) 0x0F).or(second.lanewise(VectorOperators.LSHL, 4)).intoArray(out, lo + NIBBLES_AT);
            first.lanewise(VectorOperators.LSHR, 4).or(second.and((byte) 0xF0)).intoArray(out, hi + NIBBLES_AT);
            for (int j = 2 * g; j <= 2 * g + 1; j++) {
                int b = o + j * BLOCK_BYTES;
                F32_AT.set(out, b, d * KQuant.q4kScale(w, at, j));
                F32_AT.set(out, b + 4, -(dmin * KQuant.q4kMin(w, at, j)));
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
        return data.length;
    }

    @Override
    public String toString() {
        return "PackedQ4[" + sourceType + " " + rows + "x" + cols + "]";
    }

    // ---------------------------------------------------------------------------------------------- prefill panels

    /** The GEMM's panel widening: dst[dstOff, dstOff + n) = weights [k0, k0 + n) of row {@code row} (whole blocks). */
    @Override
    public void widen(int row, int k0, int n, float[] dst, int dstOff) {
        int at = row * rowBytes + k0 / BLOCK * BLOCK_BYTES;
        for (int o = dstOff; o < dstOff + n; o += BLOCK, at += BLOCK_BYTES) {
            float scale = (float) F32_AT.get(data, at), offset = (float) F32_AT.get(data, at + 4);
            if (!VECTOR) {
                for (int l = 0; l < 16; l++) {
                    int q = data[at + NIBBLES_AT + l];
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

    private IntVector nibbles(int off) {
        return (IntVector) ByteVector.fromArray(FB, data, off).convertShape(VectorOperators.B2I, I, 0);
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
    public void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
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

    /**
     * Rows row, row + gap, row + 2 gap, row + 3 gap . x into out. Per block and row: the nibbles' products with x
     * summed, then one FMA with the block's scale and one with its offset times x's lanes of the block (summed over
     * the lanes at the end: offset * sum(x)). The low nibbles are masked, the high ones stay in place (16 q) and meet
     * x / 16 (exact), so no shift. Two accumulators per row (scaled sums, offsets): each chain takes one FMA per block.
     * A table look-up of the 16 weights per block and row (a two-table permute, as the Q4_0 decode at 16 lanes) ran
     * as fast at 16 lanes and is not one instruction at 8; this body serves both widths. Written out without helper
     * methods: C2 must inline every Vector API call of the four rows, or it boxes the vectors (50x slower;
     * docs/performance-java.md sections 5-6).
     */
    private void dot4Rows(float[] x, MemorySegment out, int row, int gap) {
        byte[] w = data;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        int at0 = row * rowBytes, at1 = at0 + gap * rowBytes, at2 = at1 + gap * rowBytes, at3 = at2 + gap * rowBytes;
        int blocks = cols / BLOCK;
        for (int b = 0; b < blocks; b++, at0 += BLOCK_BYTES, at1 += BLOCK_BYTES, at2 += BLOCK_BYTES, at3 += BLOCK_BYTES) {
            FloatVector xs = FloatVector.zero(F), q0 = xs, q1 = xs, q2 = xs, q3 = xs;
            for (int l = 0; l < 16; l += F.length()) {
                FloatVector xl = FloatVector.fromArray(F, x, BLOCK * b + l), xh = FloatVector.fromArray(F, x, BLOCK * b + 16 + l);
                xs = xs.add(xl).add(xh);
                xh = xh.mul(1f / 16);
                IntVector n0 = (IntVector) ByteVector.fromArray(FB, w, at0 + NIBBLES_AT + l).convertShape(VectorOperators.B2I, I, 0);
                IntVector n1 = (IntVector) ByteVector.fromArray(FB, w, at1 + NIBBLES_AT + l).convertShape(VectorOperators.B2I, I, 0);
                IntVector n2 = (IntVector) ByteVector.fromArray(FB, w, at2 + NIBBLES_AT + l).convertShape(VectorOperators.B2I, I, 0);
                IntVector n3 = (IntVector) ByteVector.fromArray(FB, w, at3 + NIBBLES_AT + l).convertShape(VectorOperators.B2I, I, 0);
                q0 = ((FloatVector) n0.and(0x0F).convert(VectorOperators.I2F, 0)).fma(xl, q0);
                q1 = ((FloatVector) n1.and(0x0F).convert(VectorOperators.I2F, 0)).fma(xl, q1);
                q2 = ((FloatVector) n2.and(0x0F).convert(VectorOperators.I2F, 0)).fma(xl, q2);
                q3 = ((FloatVector) n3.and(0x0F).convert(VectorOperators.I2F, 0)).fma(xl, q3);
                q0 = ((FloatVector) n0.and(0xF0).convert(VectorOperators.I2F, 0)).fma(xh, q0);
                q1 = ((FloatVector) n1.and(0xF0).convert(VectorOperators.I2F, 0)).fma(xh, q1);
                q2 = ((FloatVector) n2.and(0xF0).convert(VectorOperators.I2F, 0)).fma(xh, q2);
                q3 = ((FloatVector) n3.and(0xF0).convert(VectorOperators.I2F, 0)).fma(xh, q3);
            }
            a0 = q0.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at0)), a0);
            a1 = q1.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at1)), a1);
            a2 = q2.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at2)), a2);
            a3 = q3.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at3)), a3);
            c0 = xs.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at0 + 4)), c0);
            c1 = xs.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at1 + 4)), c1);
            c2 = xs.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at2 + 4)), c2);
            c3 = xs.fma(FloatVector.broadcast(F, (float) F32_AT.get(w, at3 + 4)), c3);
        }
        out.setAtIndex(F32, row, a0.add(c0).reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, row + gap, a1.add(c1).reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, row + 2 * gap, a2.add(c2).reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, row + 3 * gap, a3.add(c3).reduceLanes(VectorOperators.ADD));
    }

    /** {@link #dot4Rows} for machines without 256-bit vectors: one row after the other, in plain loops. */
    private void dot4RowsScalar(float[] x, MemorySegment out, int row, int gap) {
        for (int k = 0; k < 4; k++) {
            int at = (row + k * gap) * rowBytes;
            float s = 0;
            for (int b = 0; b < cols / BLOCK; b++, at += BLOCK_BYTES) {
                float scale = (float) F32_AT.get(data, at), offset = (float) F32_AT.get(data, at + 4);
                for (int l = 0; l < 16; l++) {
                    int q = data[at + NIBBLES_AT + l];
                    s += (scale * (q & 0x0F) + offset) * x[BLOCK * b + l];
                    s += (scale * ((q >> 4) & 0x0F) + offset) * x[BLOCK * b + 16 + l];
                }
            }
            out.setAtIndex(F32, row + k * gap, s);
        }
    }
}
