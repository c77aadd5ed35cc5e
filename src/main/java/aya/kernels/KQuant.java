package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * GGUF's Q5_0, Q4_K and Q6_K weights (ggml-quants.c layouts; docs/gguf-kernels.md draws them) for the Java backend:
 * <ul>
 *   <li>Q5_0, 32 values in 22 bytes: f16 d, 32 bits of 5th bits (little-endian), 16 bytes of nibbles (byte j: element j
 *       low, j + 16 high); weight = d * ((nibble | bit << 4) - 16).
 *   <li>Q4_K, 256 values in 144 bytes: f16 d, f16 dmin, 12 bytes packing eight 6-bit (scale, min) pairs, 128 bytes of
 *       nibbles (32-byte group g: sub-block 2g low, 2g + 1 high); weight = (d * scale) * nibble - dmin * min.
 *   <li>Q6_K, 256 values in 210 bytes: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales (one per 16
 *       values), f16 d; weight = (d * scale) * (6-bit value - 32).
 * </ul>
 * Numerics as the Java Q8_0 / Q4_0 kernels (docs/performance-java.md sections 1 and 9): the dequantized weights times
 * the f32 activations, summed in f32. The native kernels keep llama.cpp's (activations quantized to Q8_K / Q8_0 per
 * token, integer dot products). Prefill (tokens >= {@link JavaKernels#GEMM_MIN_TOKENS}) widens panels of rows with
 * {@link #widen}, gguf-py's values bit for bit, for the f32 GEMM; decode runs {@link #matvec}, which widens the
 * Q6_K weights in registers (Q5_0, which Tiny Aya's files do not hold, and Q4_K, which the Java backend reads through
 * its packed copy {@link PackedNibbles}, with x quantized per block, widen each row, then a dot product).
 */
final class KQuant {

    static final int QK_K = 256;
    private static final ValueLayout.OfShort U16_LE = Quant.U16_LE;
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = Quant.F32;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** F.length() floats per step (16 on AVX-512, 8 on AVX2); below 256 bits the plain loops run. */
    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    /** As many bytes as F has floats. */
    private static final VectorSpecies<Byte> FB = JavaKernels.QB;
    private static final boolean VECTOR = FB != null;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;

    private KQuant() {
    }

    static boolean handles(WeightType type) {
        return type == WeightType.Q5_0 || type == WeightType.Q4_K || type == WeightType.Q6_K;
    }

    // ---------------------------------------------------------------------------------------------- dequantize

    /** out[outOff, outOff + n) = the n weights of {@code type} blocks starting at byte {@code at} of src (gguf-py's values, bit for bit). */
    static void dequantizeRow(WeightType type, MemorySegment src, long at, int n, float[] out, int outOff) {
        type.rowBytes(n); // refuses n not a multiple of the block
        for (int o = outOff; o < outOff + n; o += type.blockSize, at += type.blockBytes) {
            switch (type) {
                case Q5_0 -> dequantizeQ5_0(src, at, out, o);
                case Q4_K -> dequantizeQ4_K(src, at, out, o);
                case Q6_K -> dequantizeQ6_K(src, at, out, o);
                default -> throw new IllegalArgumentException(type + " is not a k-quant type");
            }
        }
    }

    private static void dequantizeQ5_0(MemorySegment w, long at, float[] out, int o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at));
        int high = w.get(I32_LE, at + 2);
        for (int j = 0; j < 16; j++) {
            int q = w.get(ValueLayout.JAVA_BYTE, at + 6 + j) & 0xFF;
            out[o + j] = d * (((q & 0x0F) | (((high >>> j) & 1) << 4)) - 16);
            out[o + j + 16] = d * (((q >>> 4) | (((high >>> (j + 16)) & 1) << 4)) - 16);
        }
    }

    private static void dequantizeQ4_K(MemorySegment w, long at, float[] out, int o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at)), dmin = Float.float16ToFloat(w.get(U16_LE, at + 2));
        for (int j = 0; j < 8; j++) { // sub-block j: nibbles of bytes 32 (j / 2) .. + 32, low for even j, high for odd
            float scale = d * q4kScale(w, at, j), min = dmin * q4kMin(w, at, j);
            long qs = at + 16 + 32L * (j / 2);
            for (int l = 0; l < 32; l++) {
                int q = w.get(ValueLayout.JAVA_BYTE, qs + l) & 0xFF;
                out[o + 32 * j + l] = scale * ((j % 2 == 0 ? q : q >>> 4) & 0x0F) - min;
            }
        }
    }

    /** Q4_K's 6-bit scale of sub-block j (0..7) of the block at byte at (get_scale_min_k4). */
    static int q4kScale(MemorySegment w, long at, int j) {
        return q4kScale(w.get(I32_LE, at + 4), w.get(I32_LE, at + 12), j);
    }

    /** Q4_K's 6-bit min of sub-block j. */
    static int q4kMin(MemorySegment w, long at, int j) {
        return q4kMin(w.get(I32_LE, at + 8), w.get(I32_LE, at + 12), j);
    }

    /**
     * The same from the 12 scale bytes read as little-endian ints (a = bytes 0-3, c = bytes 8-11): j &lt; 4 in the low 6
     * bits of byte j; j &gt;= 4 in the low nibble of byte j + 4 and, as bits 4-5, the top two bits of byte j - 4.
     */
    static int q4kScale(int a, int c, int j) {
        return j < 4 ? (a >>> 8 * j) & 63 : ((c >>> 8 * (j - 4)) & 0x0F) | (((a >>> 8 * (j - 4) + 6) & 3) << 4);
    }

    /**
     * The same from the scale bytes as ints (b = bytes 4-7, c = bytes 8-11): j &lt; 4 in the low 6 bits of byte j + 4;
     * j &gt;= 4 in the high nibble of byte j + 4 and, as bits 4-5, the top two bits of byte j.
     */
    static int q4kMin(int b, int c, int j) {
        return j < 4 ? (b >>> 8 * j) & 63 : ((c >>> 8 * (j - 4) + 4) & 0x0F) | (((b >>> 8 * (j - 4) + 6) & 3) << 4);
    }

    private static void dequantizeQ6_K(MemorySegment w, long at, float[] out, int o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at + 208));
        for (int e = 0; e < QK_K; e++) {
            out[o + e] = d * w.get(ValueLayout.JAVA_BYTE, at + 192 + e / 16) * (q6kValue(w, at, e) - 32);
        }
    }

    /**
     * Q6_K's 6-bit value of element e (0..255) of the block at byte at. In each half block (128 values), byte l of the
     * 64 of ql holds the low 4 bits of elements l (low nibble) and l + 64 (high), byte l + 32 those of l + 32 and
     * l + 96; byte l of the 32 of qh their top 2 bits (bits 0-1, 2-3, 4-5, 6-7 for l, l + 32, l + 64, l + 96).
     */
    static int q6kValue(MemorySegment w, long at, int e) {
        int half = e / 128, k = e % 128 / 32, l = e % 32;
        int low = w.get(ValueLayout.JAVA_BYTE, at + 64L * half + 32 * (k % 2) + l) & 0xFF;
        int high = w.get(ValueLayout.JAVA_BYTE, at + 128 + 32L * half + l) & 0xFF;
        return ((k < 2 ? low : low >>> 4) & 0x0F) | (((high >>> (2 * k)) & 3) << 4);
    }

    /**
     * The prefill's panel widening: dst[dstOff, dstOff + n) = the n weights of {@code type} blocks from byte at (n a
     * multiple of the block: the GEMM's k blocks are multiples of 256), the same values as {@link #dequantizeRow}, bit
     * for bit, in vector code (Q5_0, rare in files, takes the plain loop).
     */
    static void widen(WeightType type, MemorySegment w, long at, int n, float[] dst, int dstOff) {
        if (!VECTOR) {
            dequantizeRow(type, w, at, n, dst, dstOff);
            return;
        }
        type.rowBytes(n);
        for (int o = dstOff; o < dstOff + n; o += type.blockSize, at += type.blockBytes) {
            switch (type) {
                case Q5_0 -> widenQ5_0(w, at, dst, o);
                case Q4_K -> widenQ4_K(w, at, dst, o);
                case Q6_K -> widenQ6_K(w, at, dst, o);
                default -> throw new IllegalArgumentException(type + " is not a k-quant type");
            }
        }
    }

    /** Lane i holds i: the bit of Q5_0's 32 fifth bits that lane i of a vector of elements j.. needs is j + i. */
    private static final IntVector LANE = IntVector.zero(I).addIndex(1);

    private static void widenQ5_0(MemorySegment w, long at, float[] dst, int o) {
        FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(w.get(U16_LE, at)));
        IntVector high = IntVector.broadcast(I, w.get(I32_LE, at + 2));
        for (int j = 0; j < 16; j += F.length()) {
            IntVector q = bytes(w, at + 6 + j);
            IntVector low = q.and(0x0F).or(high.lanewise(VectorOperators.LSHR, LANE.add(j)).and(1).lanewise(VectorOperators.LSHL, 4));
            IntVector top = q.lanewise(VectorOperators.ASHR, 4).and(0x0F)
                    .or(high.lanewise(VectorOperators.LSHR, LANE.add(j + 16)).and(1).lanewise(VectorOperators.LSHL, 4));
            ((FloatVector) low.sub(16).convert(VectorOperators.I2F, 0)).mul(d).intoArray(dst, o + j);
            ((FloatVector) top.sub(16).convert(VectorOperators.I2F, 0)).mul(d).intoArray(dst, o + 16 + j);
        }
    }

    private static void widenQ4_K(MemorySegment w, long at, float[] dst, int o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at)), dmin = Float.float16ToFloat(w.get(U16_LE, at + 2));
        // the 12 bytes of 6-bit scales and mins as three ints, read once per block (byte-wise reads per sub-block,
        // q4kScale / q4kMin, made this widening 2.5x Q4_0's)
        int a = w.get(I32_LE, at + 4), b = w.get(I32_LE, at + 8), c = w.get(I32_LE, at + 12);
        for (int g = 0; g < 4; g++) {
            FloatVector scaleLo = FloatVector.broadcast(F, d * q4kScale(a, c, 2 * g));
            FloatVector minLo = FloatVector.broadcast(F, dmin * q4kMin(b, c, 2 * g));
            FloatVector scaleHi = FloatVector.broadcast(F, d * q4kScale(a, c, 2 * g + 1));
            FloatVector minHi = FloatVector.broadcast(F, dmin * q4kMin(b, c, 2 * g + 1));
            for (int l = 0; l < 32; l += F.length()) {
                IntVector q = bytes(w, at + 16 + 32L * g + l);
                ((FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0)).mul(scaleLo).sub(minLo)
                        .intoArray(dst, o + 64 * g + l);
                ((FloatVector) q.lanewise(VectorOperators.ASHR, 4).and(0x0F).convert(VectorOperators.I2F, 0)).mul(scaleHi).sub(minHi)
                        .intoArray(dst, o + 64 * g + 32 + l);
            }
        }
    }

    /**
     * Q6_K's widening, written out without helper methods: C2 inlines the Vector API's own methods whatever the size
     * but stops inlining other calls in a method of this many vector operations (NodeCountInliningCutoff), and then
     * calls them with boxed vectors. Element e = 128 half + 32 k + l: low 4 bits in byte l (k even) or l + 32 (k
     * odd) of the half's ql, shifted by 4 for k >= 2; top 2 bits at 2k of qh's byte l (see q6kValue).
     */
    private static void widenQ6_K(MemorySegment w, long at, float[] dst, int o) {
        float d = Float.float16ToFloat(w.get(U16_LE, at + 208));
        // the 16 int8 scales as two longs, read once per block (a byte read per vector cost ~15% of this widening)
        long scalesLo = w.get(I64_LE, at + 192), scalesHi = w.get(I64_LE, at + 200);
        for (int half = 0; half < 2; half++) {
            long ql = at + 64L * half, qh = at + 128 + 32L * half;
            for (int l = 0; l < 32; l += F.length()) { // F.length() divides 16: each vector lies in one group of 16
                IntVector h = (IntVector) ByteVector.fromMemorySegment(FB, w, qh + l, LE).convertShape(VectorOperators.B2I, I, 0);
                for (int k = 0; k < 4; k++) {
                    IntVector low = (IntVector) ByteVector.fromMemorySegment(FB, w, ql + 32 * (k & 1) + l, LE)
                            .convertShape(VectorOperators.B2I, I, 0);
                    IntVector q = low.lanewise(VectorOperators.ASHR, 4 * (k >> 1)).and(0x0F)
                            .or(h.lanewise(VectorOperators.ASHR, 2 * k).and(3).lanewise(VectorOperators.LSHL, 4));
                    int e = 128 * half + 32 * k + l;
                    int i = e / 16;
                    float scale = d * (byte) ((i < 8 ? scalesLo : scalesHi) >>> 8 * (i & 7));
                    ((FloatVector) q.sub(32).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(dst, o + e);
                }
            }
        }
    }

    /** F.length() bytes at off, sign-extended to ints. */
    private static IntVector bytes(MemorySegment w, long off) {
        return (IntVector) ByteVector.fromMemorySegment(FB, w, off, LE).convertShape(VectorOperators.B2I, I, 0);
    }

    // ---------------------------------------------------------------------------------------------- decode

    /** Per-thread buffers of the decode. */
    private static final class Buffers {
        /** The token's activations on the heap [inDim]: the kernels compile better from an array than from a segment. */
        float[] x = new float[0];
        /** Q6_K: -32 x the sum of each 16 x, [inDim / 16]. */
        float[] groupOffsets = new float[0];
        /** Q6_K: two rows' 16 block scales. */
        final float[] scales = new float[32];
        /** One widened row, for the rows the multi-row kernels leave over. */
        float[] row = new float[0];
    }

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    /**
     * Decode of one token: out[r] = w[r] . x for r in [rowStart, rowEnd), the weights widened to f32 in registers and
     * multiplied with the f32 activations. As the Q8_0 / Q4_0 decode (JavaKernels.matvecQuantized), the rows of a pass
     * are spread over the slice (a quarter or half of it apart), so each streams from its own pages.
     */
    static void matvec(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                       int inDim, int rowStart, int rowEnd) {
        long rowBytes = type.rowBytes(inDim);
        Buffers buf = BUFFERS.get();
        if (buf.x.length < inDim) buf.x = new float[inDim];
        float[] xf = buf.x;
        MemorySegment.copy(x, F32, 0, xf, 0, inDim);
        float[] lanes = new float[2 * F.length()];
        int r = rowStart;
        if (VECTOR && type == WeightType.Q6_K) {
            int groups = inDim / 16;
            if (buf.groupOffsets.length < groups) buf.groupOffsets = new float[groups];
            float[] groupOffsets = buf.groupOffsets;
            for (int g = 0; g < groups; g++) {
                float s = 0;
                for (int i = 0; i < 16; i++) s += xf[16 * g + i];
                groupOffsets[g] = -32 * s;
            }
            // two rows per pass, half the slice apart. The last row of an odd slice pairs with itself (written twice).
            // One call site: C2 inlines the kernel into this loop, and a second copy made the method too big to
            // compile well (1.5x slower).
            int gap = (rowEnd - rowStart) / 2, passes = gap + (rowEnd - rowStart) % 2;
            for (int p = 0; p < passes; p++) {
                int row = p < gap ? rowStart + p : rowEnd - 1, step = p < gap ? gap : 0;
                dot2RowsQ6_K(w, row * rowBytes, (row + step) * rowBytes, inDim / QK_K, xf, groupOffsets, buf.scales, out, row, step, lanes);
            }
            r = rowEnd;
        }
        if (buf.row.length < inDim) buf.row = new float[inDim];
        // the rows left over by the multi-row kernel, and every Q5_0 and Q4_K row (rare in files; the Java backend
        // reads Q4_K through its packed copy, PackedNibbles, and gets here only when called with the file's layout)
        for (; r < rowEnd; r++) {
            widen(type, w, r * rowBytes, inDim, buf.row, 0);
            out.setAtIndex(F32, r, dot(buf.row, xf, inDim, lanes));
        }
    }

    /** row[0, n) . x[0, n) (n a multiple of 32). */
    private static float dot(float[] row, float[] x, int n, float[] lanes) {
        if (!VECTOR) {
            float s = 0;
            for (int i = 0; i < n; i++) s += row[i] * x[i];
            return s;
        }
        FloatVector acc = FloatVector.zero(F);
        for (int i = 0; i < n; i += F.length()) {
            acc = FloatVector.fromArray(F, row, i).fma(FloatVector.fromArray(F, x, i), acc);
        }
        acc.intoArray(lanes, 0);
        return JavaKernels.sum(lanes, 0);
    }

    // ---------------------------------------------------------------------------------------------- Q6_K decode

    // The 6-bit values are built in registers, never stored: per half block, 64 bytes of low bits and 32 of high bits
    // loaded as 16-bit lanes give 32 values at a time (two bytes per lane; the masks drop the bits a shift carries
    // across), widened to f32 by convertShape(B2F). Per group of 16 the products with x are scaled by the group's
    // int8 scale; the -32 offset is taken once per group from x's sum (groupOffsets), then x d per block. Q6_K is the
    // type of the output head of Q4_0 and Q4_K_M files (262144 x 2048: a fifth of the bytes a token reads).

    /**
     * The Q6_K rows at bytes at0 and at1 . x into out at o0 and o0 + gap: per block, d times the sum over groups g of 16
     * of scale_g * (sum(v x) - 32 sum(x)).
     * Byte l of each 64-byte half of ql holds the low 4 bits of elements l (low nibble) and l + 64 (high), byte l + 32
     * those of l + 32 and l + 96; byte l of qh their top 2 bits (bits 0-1, 2-3, 4-5, 6-7 for l, l + 32, l + 64, l + 96).
     * Written out without helper methods: C2 must inline every Vector API call, or it boxes the vectors (50x slower).
     */
    private static void dot2RowsQ6_K(MemorySegment w, long at0, long at1, int blocks, float[] x, float[] groupOffsets,
                                     float[] scales, MemorySegment out, long o0, int gap, float[] lanes) {
        FloatVector acc0 = FloatVector.zero(F), acc1 = acc0;
        for (int b = 0; b < blocks; b++, at0 += 210, at1 += 210) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, t0 = s0, t1 = s0;
            for (int i = 0; i < 16; i += F.length()) {
                FloatVector off = FloatVector.fromArray(F, groupOffsets, 16 * b + i);
                FloatVector scale0 = (FloatVector) ByteVector.fromMemorySegment(FB, w, at0 + 192 + i, LE)
                        .convertShape(VectorOperators.B2F, F, 0);
                FloatVector scale1 = (FloatVector) ByteVector.fromMemorySegment(FB, w, at1 + 192 + i, LE)
                        .convertShape(VectorOperators.B2F, F, 0);
                scale0.intoArray(scales, i);
                scale1.intoArray(scales, 16 + i);
                s0 = scale0.fma(off, s0);
                t0 = scale1.fma(off, t0);
            }
            for (int half = 0; half < 2; half++) {
                long ql0 = at0 + 64L * half, qh0 = at0 + 128 + 32L * half;
                long ql1 = at1 + 64L * half, qh1 = at1 + 128 + 32L * half;
                int o = QK_K * b + 128 * half;
                int g = 8 * half;
                // 32 values at a time in 16-bit lanes (two bytes each; the masks drop the bits a shift moves across)
                ShortVector a = ShortVector.fromMemorySegment(S256, w, ql0, LE);
                ShortVector c = ShortVector.fromMemorySegment(S256, w, ql0 + 32, LE);
                ShortVector h = ShortVector.fromMemorySegment(S256, w, qh0, LE);
                ByteVector v0 = a.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 4).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector v1 = c.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 2).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector v2 = a.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F).or(h.and((short) 0x3030)).reinterpretAsBytes();
                ByteVector v3 = c.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F)
                        .or(h.lanewise(VectorOperators.LSHR, 2).and((short) 0x3030)).reinterpretAsBytes();
                a = ShortVector.fromMemorySegment(S256, w, ql1, LE);
                c = ShortVector.fromMemorySegment(S256, w, ql1 + 32, LE);
                h = ShortVector.fromMemorySegment(S256, w, qh1, LE);
                ByteVector u0 = a.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 4).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector u1 = c.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 2).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector u2 = a.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F).or(h.and((short) 0x3030)).reinterpretAsBytes();
                ByteVector u3 = c.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F)
                        .or(h.lanewise(VectorOperators.LSHR, 2).and((short) 0x3030)).reinterpretAsBytes();
                for (int p = 0; p < 32 / F.length(); p++, o += F.length()) {
                    FloatVector x0 = FloatVector.fromArray(F, x, o), x1 = FloatVector.fromArray(F, x, o + 32);
                    FloatVector x2 = FloatVector.fromArray(F, x, o + 64), x3 = FloatVector.fromArray(F, x, o + 96);
                    int gl = g + p * F.length() / 16;
                    s0 = ((FloatVector) v0.convertShape(VectorOperators.B2F, F, p)).mul(x0).fma(FloatVector.broadcast(F, scales[gl]), s0);
                    s1 = ((FloatVector) v1.convertShape(VectorOperators.B2F, F, p)).mul(x1).fma(FloatVector.broadcast(F, scales[gl + 2]), s1);
                    s0 = ((FloatVector) v2.convertShape(VectorOperators.B2F, F, p)).mul(x2).fma(FloatVector.broadcast(F, scales[gl + 4]), s0);
                    s1 = ((FloatVector) v3.convertShape(VectorOperators.B2F, F, p)).mul(x3).fma(FloatVector.broadcast(F, scales[gl + 6]), s1);
                    t0 = ((FloatVector) u0.convertShape(VectorOperators.B2F, F, p)).mul(x0).fma(FloatVector.broadcast(F, scales[16 + gl]), t0);
                    t1 = ((FloatVector) u1.convertShape(VectorOperators.B2F, F, p)).mul(x1).fma(FloatVector.broadcast(F, scales[16 + gl + 2]), t1);
                    t0 = ((FloatVector) u2.convertShape(VectorOperators.B2F, F, p)).mul(x2).fma(FloatVector.broadcast(F, scales[16 + gl + 4]), t0);
                    t1 = ((FloatVector) u3.convertShape(VectorOperators.B2F, F, p)).mul(x3).fma(FloatVector.broadcast(F, scales[16 + gl + 6]), t1);
                }
            }
            float d0 = Float.float16ToFloat(w.get(U16_LE, at0 + 208));
            float d1 = Float.float16ToFloat(w.get(U16_LE, at1 + 208));
            acc0 = s0.add(s1).fma(FloatVector.broadcast(F, d0), acc0);
            acc1 = t0.add(t1).fma(FloatVector.broadcast(F, d1), acc1);
        }
        acc0.intoArray(lanes, 0);
        acc1.intoArray(lanes, F.length());
        out.setAtIndex(F32, o0, JavaKernels.sum(lanes, 0));
        out.setAtIndex(F32, o0 + gap, JavaKernels.sum(lanes, F.length()));
    }
}
