package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A Q6_K matrix repacked at load for the Java backend: each block of 256 weights as the 256 values {@code q - 32} as
 * int8, then the block's 16 int8 group scales and its d as f32, 276 bytes per block (1.31x the file's 210), rows one
 * after another. The kernels compute the weights exactly as {@link KQuant#dequantizeRow} does:
 * {@code (d * scale_g) * (q - 32)} in f32.
 *
 * <p>Why: the 6-bit layout costs the decode ~16 vector operations per 32 weights and row to rebuild the values
 * (docs/performance-java.md section 8: compute-bound at ~2x native's CPU per block, every variant of that kernel
 * failed); int8 values are one widening load and a convert, as Q8_0. The output head of Q4_0 and Q4_K_M files
 * (262144 x 2048) and the Q6_K layer matrices of Q4_K_M files read this copy; section 11 has the numbers.
 */
record PackedQ6K(MemorySegment data, int rows, int cols) implements JavaPackedMatrix {

    /** Bytes of a packed block: 256 int8 values, 16 int8 group scales, f32 d. */
    static final int BLOCK_BYTES = KQuant.QK_K + 16 + Float.BYTES;
    private static final int SCALES = KQuant.QK_K; // offsets in a block
    private static final int D = KQuant.QK_K + 16;
    private static final int SOURCE_BLOCK_BYTES = WeightType.Q6_K.blockBytes;
    /** Rows per piece of the packing spread over the pool (2.3 MB of output for 2048 columns). */
    private static final int PACK_ROWS = 1024;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort U16_LE = Quant.U16_LE;
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VectorSpecies<Float> F = JavaKernels.F;
    /** As many bytes as F has floats (16 for 512-bit F, 8 for 256-bit); below 256 bits the plain loops run. */
    private static final VectorSpecies<Byte> FB = JavaKernels.QB;
    private static final boolean VECTOR = FB != null;

    @Override
    public WeightType sourceType() {
        return WeightType.Q6_K;
    }

    @Override
    public long byteSize() {
        return data.byteSize();
    }

    @Override
    public String toString() {
        return "packed Q6_K " + rows + "x" + cols;
    }

    private long rowBytes() {
        return (long) cols / KQuant.QK_K * BLOCK_BYTES;
    }

    // ---------------------------------------------------------------------------------------------- packing

    /** Q6_K matrix w [rows, cols] (cols a multiple of 256) repacked into memory of arena, the rows spread over pool. */
    static PackedQ6K pack(MemorySegment w, int rows, int cols, Arena arena, Parallel pool) {
        long sourceRowBytes = WeightType.Q6_K.rowBytes(cols); // refuses cols that are not whole blocks
        if (w.byteSize() < rows * sourceRowBytes) {
            throw new IllegalArgumentException("Q6_K matrix of " + rows + "x" + cols + " needs " + rows * sourceRowBytes
                    + " bytes, got " + w.byteSize());
        }
        PackedQ6K p = new PackedQ6K(arena.allocate(rows * ((long) cols / KQuant.QK_K * BLOCK_BYTES), 64), rows, cols);
        long blocksPerRow = cols / KQuant.QK_K;
        pool.forPieces(rows, PACK_ROWS, (worker, from, to) -> {
            for (long b = from * blocksPerRow; b < to * blocksPerRow; b++) {
                packBlock(w, b * SOURCE_BLOCK_BYTES, p.data, b * BLOCK_BYTES);
            }
        });
        return p;
    }

    /**
     * The Q6_K block at byte at of w into the packed block at byte to. In each half block (128 values) byte l of the
     * 64 of ql holds the low 4 bits of elements l (low nibble) and l + 64 (high), byte l + 32 those of l + 32 and
     * l + 96; byte l of the 32 of qh their top 2 bits (bits 0-1, 2-3, 4-5, 6-7 for l, l + 32, l + 64, l + 96).
     * Eight values at a time in a long (no bit crosses a byte): plain code that the JIT compiles within the first
     * pieces, where Vector API code runs interpreted (boxing every vector) until C2 compiles it, which took seconds of
     * the head's packing.
     */
    private static void packBlock(MemorySegment w, long at, MemorySegment dst, long to) {
        dst.set(F32, to + D, Float.float16ToFloat(w.get(U16_LE, at + 208)));
        MemorySegment.copy(w, at + 192, dst, to + SCALES, 16);
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l += 8) {
                long a = w.get(I64_LE, at + 64L * half + l), c = w.get(I64_LE, at + 64L * half + 32 + l);
                long h = w.get(I64_LE, at + 128 + 32L * half + l);
                long o = to + 128L * half + l;
                dst.set(I64_LE, o, minus32((a & LOW4) | ((h & 0x0303030303030303L) << 4)));
                dst.set(I64_LE, o + 32, minus32((c & LOW4) | ((h & 0x0C0C0C0C0C0C0C0CL) << 2)));
                dst.set(I64_LE, o + 64, minus32(((a >>> 4) & LOW4) | (h & 0x3030303030303030L)));
                dst.set(I64_LE, o + 96, minus32(((c >>> 4) & LOW4) | ((h >>> 2) & 0x3030303030303030L)));
            }
        }
    }

    private static final long LOW4 = 0x0F0F0F0F0F0F0F0FL;
    private static final long BIT5 = 0x2020202020202020L;

    /** Eight 6-bit values v (one per byte) as the int8 bytes of v - 32: flip bit 5, then copy it into bits 6 and 7. */
    private static long minus32(long v) {
        long r = v ^ BIT5;
        return r | (r & BIT5) * 6; // 0x20 * 6 = 0xC0: stays in its byte
    }

    // ---------------------------------------------------------------------------------------------- prefill

    /** The GEMM's panel widening: dst[dstOff, dstOff + n) = weights [col, col + n) of row (col, n multiples of 256). */
    @Override
    public void widen(int row, int col, int n, float[] dst, int dstOff) {
        long at = row * rowBytes() + (long) col / KQuant.QK_K * BLOCK_BYTES;
        for (int o = dstOff; o < dstOff + n; o += KQuant.QK_K, at += BLOCK_BYTES) {
            float d = data.get(F32, at + D);
            for (int g = 0; g < 16; g++) {
                float scale = d * data.get(ValueLayout.JAVA_BYTE, at + SCALES + g); // as KQuant.dequantizeQ6_K
                long values = at + 16L * g;
                int e = o + 16 * g;
                if (VECTOR) {
                    FloatVector s = FloatVector.broadcast(F, scale);
                    for (int j = 0; j < 16; j += F.length()) {
                        ((FloatVector) ByteVector.fromMemorySegment(FB, data, values + j, LE).convertShape(VectorOperators.B2F, F, 0))
                                .mul(s).intoArray(dst, e + j);
                    }
                } else {
                    for (int j = 0; j < 16; j++) dst[e + j] = scale * data.get(ValueLayout.JAVA_BYTE, values + j);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------- decode

    /**
     * Decode of one token: out[r] = w[r] . x (x [cols] f32) for r in [rowStart, rowEnd). Four rows per pass a quarter
     * of the slice apart, as JavaKernels' Q8_0 decode (each row streams from its own pages); the rows the passes
     * leave over (at most three) go one at a time through the same kernel with all four rows the same.
     */
    public void matvec(MemorySegment x, MemorySegment out, int rowStart, int rowEnd) {
        long rowBytes = rowBytes();
        int blocks = cols / KQuant.QK_K;
        if (!VECTOR) {
            for (int r = rowStart; r < rowEnd; r++) out.setAtIndex(F32, r, dotPlain(r * rowBytes, x, blocks));
            return;
        }
        float[] scales = new float[4 * 16];
        int gap = (rowEnd - rowStart) / 4;
        for (int r = rowStart; r < rowStart + gap; r++) dot4Rows(data, rowBytes, x, blocks, out, r, gap, scales);
        for (int r = rowStart + 4 * gap; r < rowEnd; r++) dot4Rows(data, rowBytes, x, blocks, out, r, 0, scales);
    }

    /**
     * Rows r, r + gap, r + 2 gap, r + 3 gap (rowBytes each) . x into out. Per block the four rows' 16 group scales
     * {@code d * scale_g} go into scales[16 row ..] (one vector multiply per row); per group of 16 the int8 values are
     * widened, times the group's scale (the dequantized weights, bit for bit), then FMA'd with x into the row's
     * accumulator. Written out without helper methods so that C2 inlines every Vector API call of the four rows.
     * The 16 scales as f32 in the block instead (d * scale_g made at packing: 320 bytes per block, 1.52x the file)
     * measured 1.2-1.4x slower, in cache as well as from memory (docs/performance-java.md section 11).
     */
    private static void dot4Rows(MemorySegment w, long rowBytes, MemorySegment x, int blocks,
                                 MemorySegment out, int r, int gap, float[] scales) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long at0 = r * rowBytes, at1 = at0 + gap * rowBytes, at2 = at1 + gap * rowBytes, at3 = at2 + gap * rowBytes;
        for (int b = 0; b < blocks; b++, at0 += BLOCK_BYTES, at1 += BLOCK_BYTES, at2 += BLOCK_BYTES, at3 += BLOCK_BYTES) {
            float d0 = w.get(F32, at0 + D), d1 = w.get(F32, at1 + D), d2 = w.get(F32, at2 + D), d3 = w.get(F32, at3 + D);
            for (int i = 0; i < 16; i += F.length()) {
                ((FloatVector) ByteVector.fromMemorySegment(FB, w, at0 + SCALES + i, LE).convertShape(VectorOperators.B2F, F, 0)).mul(d0).intoArray(scales, i);
                ((FloatVector) ByteVector.fromMemorySegment(FB, w, at1 + SCALES + i, LE).convertShape(VectorOperators.B2F, F, 0)).mul(d1).intoArray(scales, 16 + i);
                ((FloatVector) ByteVector.fromMemorySegment(FB, w, at2 + SCALES + i, LE).convertShape(VectorOperators.B2F, F, 0)).mul(d2).intoArray(scales, 32 + i);
                ((FloatVector) ByteVector.fromMemorySegment(FB, w, at3 + SCALES + i, LE).convertShape(VectorOperators.B2F, F, 0)).mul(d3).intoArray(scales, 48 + i);
            }
            for (int g = 0; g < 16; g++) {
                FloatVector s0 = FloatVector.broadcast(F, scales[g]), s1 = FloatVector.broadcast(F, scales[16 + g]);
                FloatVector s2 = FloatVector.broadcast(F, scales[32 + g]), s3 = FloatVector.broadcast(F, scales[48 + g]);
                for (int j = 0; j < 16; j += F.length()) {
                    long v = 16L * g + j;
                    FloatVector xv = FloatVector.fromMemorySegment(F, x, (b * (long) KQuant.QK_K + 16 * g + j) * 4, ByteOrder.nativeOrder());
                    a0 = ((FloatVector) ByteVector.fromMemorySegment(FB, w, at0 + v, LE).convertShape(VectorOperators.B2F, F, 0)).mul(s0).fma(xv, a0);
                    a1 = ((FloatVector) ByteVector.fromMemorySegment(FB, w, at1 + v, LE).convertShape(VectorOperators.B2F, F, 0)).mul(s1).fma(xv, a1);
                    a2 = ((FloatVector) ByteVector.fromMemorySegment(FB, w, at2 + v, LE).convertShape(VectorOperators.B2F, F, 0)).mul(s2).fma(xv, a2);
                    a3 = ((FloatVector) ByteVector.fromMemorySegment(FB, w, at3 + v, LE).convertShape(VectorOperators.B2F, F, 0)).mul(s3).fma(xv, a3);
                }
            }
        }
        out.setAtIndex(F32, r, a0.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, r + gap, a1.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, r + 2 * gap, a2.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, r + 3 * gap, a3.reduceLanes(VectorOperators.ADD));
    }

    /** The row at byte at . x without vectors (F narrower than 256 bits). */
    private float dotPlain(long at, MemorySegment x, int blocks) {
        float s = 0;
        for (int b = 0; b < blocks; b++, at += BLOCK_BYTES) {
            float d = data.get(F32, at + D);
            for (int e = 0; e < KQuant.QK_K; e++) {
                float weight = d * data.get(ValueLayout.JAVA_BYTE, at + SCALES + e / 16) * data.get(ValueLayout.JAVA_BYTE, at + e);
                s += weight * x.getAtIndex(F32, (long) b * KQuant.QK_K + e);
            }
        }
        return s;
    }
}
