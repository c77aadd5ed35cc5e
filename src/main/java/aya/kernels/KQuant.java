package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * GGUF's Q5_0, Q4_K and Q6_K weights (ggml-quants.c layouts; docs/gguf-kernels.md draws them), with llama.cpp's
 * numerics, as the native kernels (native/src/generic/kquant_generic.c) compute them:
 * <ul>
 *   <li>Q5_0, 32 values in 22 bytes: f16 d, 32 bits of 5th bits (little-endian), 16 bytes of nibbles (byte j: element j
 *       low, j + 16 high); value = (nibble | bit << 4) - 16, weight = value * d. Activations: Q8_0 ({@link Quant}).
 *   <li>Q4_K, 256 values in 144 bytes: f16 d, f16 dmin, 12 bytes packing eight 6-bit (scale, min) pairs, 128 bytes of
 *       nibbles (32-byte group g: sub-block 2g low, 2g + 1 high); weight = d * scale * nibble - dmin * min.
 *   <li>Q6_K, 256 values in 210 bytes: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales (one per 16
 *       values), f16 d; weight = d * scale * (6-bit value - 32).
 * </ul>
 * Q4_K / Q6_K activations are quantized per token to Q8_K (quantize_row_q8_K_ref): per 256 values d = max / -127 (max:
 * the value of largest magnitude), q = round-half-even(x * -127 / max), plus the sums of each 16 q. Each block's dot
 * product is an exact integer, multiplied by d_w * d_x and summed in f32: results equal the native kernels' up to the
 * order of the f32 sums.
 */
final class KQuant {

    static final int QK_K = 256;
    private static final ValueLayout.OfShort U16_LE = Quant.U16_LE;
    private static final ValueLayout.OfFloat F32 = Quant.F32;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    /** The vector dot products need 256-bit shorts (16 lanes); narrower machines take the plain loop (same integers). */
    private static final boolean VECTOR = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256;

    private KQuant() {
    }

    static boolean handles(WeightType type) {
        return type == WeightType.Q5_0 || type == WeightType.Q4_K || type == WeightType.Q6_K;
    }

    // ---------------------------------------------------------------------------------------------- dequantize

    /** out[outOff, outOff + n) = the n weights of {@code type} blocks starting at byte {@code at} of src (gguf-py's values, bit for bit). */
    static void dequantizeRow(WeightType type, MemorySegment src, long at, int n, float[] out, int outOff) {
        type.rowBytes(n); // refuses n not a multiple of the block
        Row row = new Row(type.blockSize);
        for (int b = 0; b < n / type.blockSize; b++, at += type.blockBytes) {
            row.unpackBlock(type, src, at, 0);
            int o = outOff + b * type.blockSize;
            for (int j = 0; j < type.blockSize; j++) {
                // the operation order of gguf-py and ggml: (d * scale) * value - dmin * min
                out[o + j] = row.d[0] * row.scale[j / 16] * row.u[j] - row.dmin[0] * row.min[j / 32];
            }
        }
    }

    /**
     * A row unpacked for the dot products: values u (Q5_0: -16..15, Q4_K: 0..15, Q6_K: -32..31), the integer scale of
     * each 16 values, and per block d (and for Q4_K dmin and the min of each 32 values).
     */
    static final class Row {
        short[] u;
        int[] scale;
        int[] min;
        float[] d;
        float[] dmin;

        Row(int n) {
            u = new short[n];
            scale = new int[n / 16];
            min = new int[Math.max(1, n / 32)];
            d = new float[Math.max(1, n / 32)];
            dmin = new float[Math.max(1, n / 32)];
        }

        void ensure(int n) {
            if (u.length < n) {
                u = new short[n];
                scale = new int[n / 16];
                min = new int[n / 32];
                d = new float[n / 32];
                dmin = new float[n / 32];
            }
        }

        /** Unpacks block {@code b} of the row (the block at byte {@code at}). */
        void unpackBlock(WeightType type, MemorySegment w, long at, int b) {
            switch (type) {
                case Q5_0 -> unpackQ5_0(w, at, b);
                case Q4_K -> unpackQ4_K(w, at, b);
                case Q6_K -> unpackQ6_K(w, at, b);
                default -> throw new IllegalArgumentException(type + " is not a k-quant type");
            }
        }

        private void unpackQ5_0(MemorySegment w, long at, int b) {
            int high = w.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), at + 2);
            int o = 32 * b;
            for (int j = 0; j < 16; j++) { // rare in files (rows not a multiple of 256): the plain loop
                int q = w.get(ValueLayout.JAVA_BYTE, at + 6 + j) & 0xFF;
                u[o + j] = (short) (((q & 0x0F) | (((high >>> j) & 1) << 4)) - 16);
                u[o + j + 16] = (short) (((q >>> 4) | (((high >>> (j + 16)) & 1) << 4)) - 16);
            }
            scale[2 * b] = 1;
            scale[2 * b + 1] = 1;
            min[b] = 0;
            d[b] = Float.float16ToFloat(w.get(U16_LE, at));
            dmin[b] = 0;
        }

        private void unpackQ4_K(MemorySegment w, long at, int b) {
            int o = QK_K * b;
            for (int g = 0; g < 4; g++) {
                long qs = at + 16 + 32L * g;
                if (VECTOR) {
                    for (int h = 0; h < 32; h += 16) {
                        ShortVector q = shorts(w, qs + h);
                        q.and((short) 0x0F).intoArray(u, o + 64 * g + h);
                        q.lanewise(VectorOperators.ASHR, 4).and((short) 0x0F).intoArray(u, o + 64 * g + 32 + h);
                    }
                } else {
                    for (int l = 0; l < 32; l++) {
                        int q = w.get(ValueLayout.JAVA_BYTE, qs + l) & 0xFF;
                        u[o + 64 * g + l] = (short) (q & 0x0F);
                        u[o + 64 * g + 32 + l] = (short) (q >>> 4);
                    }
                }
            }
            for (int j = 0; j < 8; j++) {
                int s, m;
                if (j < 4) {
                    s = sc(w, at, j) & 63;
                    m = sc(w, at, j + 4) & 63;
                } else {
                    s = (sc(w, at, j + 4) & 0x0F) | ((sc(w, at, j - 4) >>> 6) << 4);
                    m = (sc(w, at, j + 4) >>> 4) | ((sc(w, at, j) >>> 6) << 4);
                }
                scale[16 * b + 2 * j] = s;
                scale[16 * b + 2 * j + 1] = s;
                min[8 * b + j] = m;
            }
            d[b] = Float.float16ToFloat(w.get(U16_LE, at));
            dmin[b] = Float.float16ToFloat(w.get(U16_LE, at + 2));
        }

        /** 16 bytes from {@code at}, sign-extended to shorts. */
        private static ShortVector shorts(MemorySegment w, long at) {
            return (ShortVector) ByteVector.fromMemorySegment(B128, w, at, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S256, 0);
        }

        private static int sc(MemorySegment w, long at, int i) {
            return w.get(ValueLayout.JAVA_BYTE, at + 4 + i) & 0xFF;
        }

        private void unpackQ6_K(MemorySegment w, long at, int b) {
            for (int half = 0; half < 2; half++) {
                long ql = at + 64L * half, qh = at + 128 + 32L * half;
                int o = QK_K * b + 128 * half;
                if (VECTOR) { // 16 values of each quarter at a time (bytes widen signed: shift, then mask)
                    for (int l = 0; l < 32; l += 16) {
                        ShortVector lo0 = shorts(w, ql + l), lo1 = shorts(w, ql + l + 32), h = shorts(w, qh + l);
                        lo0.and((short) 0x0F).or(h.and((short) 3).lanewise(VectorOperators.LSHL, 4)).sub((short) 32)
                                .intoArray(u, o + l);
                        lo1.and((short) 0x0F).or(h.lanewise(VectorOperators.ASHR, 2).and((short) 3).lanewise(VectorOperators.LSHL, 4))
                                .sub((short) 32).intoArray(u, o + l + 32);
                        lo0.lanewise(VectorOperators.ASHR, 4).and((short) 0x0F)
                                .or(h.lanewise(VectorOperators.ASHR, 4).and((short) 3).lanewise(VectorOperators.LSHL, 4))
                                .sub((short) 32).intoArray(u, o + l + 64);
                        lo1.lanewise(VectorOperators.ASHR, 4).and((short) 0x0F)
                                .or(h.lanewise(VectorOperators.ASHR, 6).and((short) 3).lanewise(VectorOperators.LSHL, 4))
                                .sub((short) 32).intoArray(u, o + l + 96);
                    }
                    continue;
                }
                for (int l = 0; l < 32; l++) {
                    int lo0 = w.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF, lo1 = w.get(ValueLayout.JAVA_BYTE, ql + l + 32) & 0xFF;
                    int h = w.get(ValueLayout.JAVA_BYTE, qh + l) & 0xFF;
                    u[o + l] = (short) (((lo0 & 0x0F) | ((h & 3) << 4)) - 32);
                    u[o + l + 32] = (short) (((lo1 & 0x0F) | (((h >>> 2) & 3) << 4)) - 32);
                    u[o + l + 64] = (short) (((lo0 >>> 4) | (((h >>> 4) & 3) << 4)) - 32);
                    u[o + l + 96] = (short) (((lo1 >>> 4) | (((h >>> 6) & 3) << 4)) - 32);
                }
            }
            for (int g = 0; g < 16; g++) scale[16 * b + g] = w.get(ValueLayout.JAVA_BYTE, at + 192 + g);
            d[b] = Float.float16ToFloat(w.get(U16_LE, at + 208));
            dmin[b] = 0;
            for (int j = 0; j < 8; j++) min[8 * b + j] = 0;
        }
    }

    // ---------------------------------------------------------------------------------------------- activations

    /**
     * Q8_K (quantize_row_q8_K_ref) of the n floats of x from element xOff: values widened to shorts in q[qOff...], one
     * f32 scale per 256 in d[dOff...] and the sum of each 16 values in sums[sOff...].
     */
    /**
     * Q5_0's activations as Q8_0 blocks (llama.cpp's quantize_row_q8_0 numerics, as the C kernels): per 32 values
     * d = max|x| / 127 (stored through fp16), q = roundf(x / d), widened to shorts in q[qOff...], scales in s[sOff...].
     */
    static void quantizeQ8_0(MemorySegment x, long xOff, int n, short[] q, int qOff, float[] s, int sOff) {
        int block = WeightType.Q8_0.blockSize;
        for (int b = 0; b < n / block; b++) {
            long base = xOff + (long) b * block;
            float amax = 0;
            for (int j = 0; j < block; j++) amax = Math.max(amax, Math.abs(x.getAtIndex(Quant.F32, base + j)));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            s[sOff + b] = Float.float16ToFloat(Quant.f16(d));
            for (int j = 0; j < block; j++) {
                q[qOff + b * block + j] = (short) Quant.roundf(x.getAtIndex(Quant.F32, base + j) * id);
            }
        }
    }

    static void quantizeQ8_K(MemorySegment x, long xOff, int n, short[] q, int qOff, float[] d, int dOff, int[] sums, int sOff) {
        for (int b = 0; b < n / QK_K; b++) {
            long base = xOff + (long) b * QK_K;
            int qb = qOff + b * QK_K;
            float max = 0, amax = 0;
            for (int j = 0; j < QK_K; j++) {
                float v = x.getAtIndex(F32, base + j);
                if (Math.abs(v) > amax) { // strictly greater: the first of equal magnitudes, with its sign
                    amax = Math.abs(v);
                    max = v;
                }
            }
            if (amax == 0) {
                d[dOff + b] = 0;
                for (int j = 0; j < QK_K; j++) q[qb + j] = 0;
            } else {
                float iscale = -127f / max;
                for (int j = 0; j < QK_K; j++) {
                    // ggml's nearest_int: round half to even
                    q[qb + j] = (short) Math.min(127, (int) Math.rint(iscale * x.getAtIndex(F32, base + j)));
                }
                d[dOff + b] = 1 / iscale;
            }
            for (int g = 0; g < QK_K / 16; g++) {
                int sum = 0;
                for (int j = 0; j < 16; j++) sum += q[qb + 16 * g + j];
                sums[sOff + b * 16 + g] = sum;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------- matmul

    /** Per-thread buffers: quantized activations and one unpacked weight row. */
    private static final class Buffers {
        short[] xq = new short[0];
        float[] xd = new float[0];
        int[] xsum = new int[0];
        final Row row = new Row(QK_K);
        /** Q6_K decode: one token's q as floats [inDim], and -32 x the sum of each 16 of them [inDim / 16]. */
        float[] xqf = new float[0];
        float[] xOffset = new float[0];
        /** Q6_K decode: one block's 16 scales as floats, of two rows. */
        final float[] scales = new float[32];
    }

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    /**
     * The {@link Kernels#matmul} contract for Q5_0 / Q4_K / Q6_K: each row is unpacked once (values, integer scales)
     * and then dotted with every token, so a prefill reads the weights from memory once.
     */
    static void matmul(WeightType type, MemorySegment w, MemorySegment x, MemorySegment out,
                       int tokens, int inDim, int outStride, int rowStart, int rowEnd) {
        int block = type.blockSize;
        int blocks = inDim / block;
        if (blocks * block != inDim) {
            throw new IllegalArgumentException(type + " rows need a multiple of " + block + " weights, got " + inDim);
        }
        Buffers buf = BUFFERS.get();
        if (buf.xq.length < tokens * inDim || buf.xd.length < tokens * blocks) { // blocks of 32 (Q5_0) need more scales
            buf.xq = new short[tokens * inDim];
            buf.xd = new float[tokens * blocks];
            buf.xsum = new int[tokens * inDim / 16];
        }
        for (int t = 0; t < tokens; t++) {
            if (type == WeightType.Q5_0) {
                quantizeQ8_0(x, (long) t * inDim, inDim, buf.xq, t * inDim, buf.xd, t * blocks);
            } else {
                quantizeQ8_K(x, (long) t * inDim, inDim, buf.xq, t * inDim, buf.xd, t * blocks, buf.xsum, t * inDim / 16);
            }
        }
        long rowBytes = type.rowBytes(inDim);
        if (type == WeightType.Q6_K && Q6_K_DECODE && tokens < JavaKernels.GEMM_MIN_TOKENS) {
            matvecQ6_K(w, rowBytes, blocks, buf, tokens, inDim, out, outStride, rowStart, rowEnd);
            return;
        }
        Row row = buf.row;
        row.ensure(inDim);
        for (int r = rowStart; r < rowEnd; r++) {
            long at = r * rowBytes;
            for (int b = 0; b < blocks; b++) row.unpackBlock(type, w, at + (long) b * type.blockBytes, b);
            for (int t = 0; t < tokens; t++) {
                float dot = VECTOR ? dotVector(row, block, blocks, buf, t * inDim, t * blocks)
                                   : dotScalar(row, block, blocks, buf, t * inDim, t * blocks);
                if (type == WeightType.Q4_K) dot -= minsTerm(row, blocks, buf, t * blocks, t * inDim / 16);
                out.setAtIndex(F32, (long) t * outStride + r, dot);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------- Q6_K decode

    // Decode reads each weight once per token, so unpacking rows into short[] (as the prefill above does, to reuse
    // them for every token) costs more than the dot product: here the 6-bit values are unpacked in registers, as f32.
    // The numerics stay llama.cpp's: the activations are Q8_K and the f32 lanes sum each block's integers v * q *
    // scale (a lane holds at most 16 of them, each |v q scale| <= 63 * 127 * 128, so their sum stays below 2^24 and
    // exact; only the -32 offsets added to it can, in extreme blocks, take a partial sum past 2^24 and round);
    // otherwise only the order of the f32 sums over blocks differs from the native kernels. Q6_K is the type
    // llama-quantize gives the output head of Q4_0 files (262144 x 2048: a fifth of the bytes a token reads).

    /** F.length() floats per step (16 on AVX-512, 8 on AVX2); below 256 bits the plain loop above runs. */
    private static final VectorSpecies<Float> F = JavaKernels.F;
    /** As many bytes as F has floats. */
    private static final VectorSpecies<Byte> FB = F.vectorBitSize() >= 256
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 4)) : null;
    private static final boolean Q6_K_DECODE = FB != null;

    /** Decode (tokens < GEMM_MIN_TOKENS) of Q6_K rows [rowStart, rowEnd), token by token, two rows per pass. */
    private static void matvecQ6_K(MemorySegment w, long rowBytes, int blocks, Buffers buf, int tokens, int inDim,
                                   MemorySegment out, int outStride, int rowStart, int rowEnd) {
        if (buf.xqf.length < inDim) {
            buf.xqf = new float[inDim];
            buf.xOffset = new float[inDim / 16];
        }
        float[] xq = buf.xqf, xOffset = buf.xOffset;
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < inDim; i++) xq[i] = buf.xq[t * inDim + i];
            for (int g = 0; g < inDim / 16; g++) xOffset[g] = -32f * buf.xsum[t * inDim / 16 + g];
            // two rows per pass, half the slice apart: each streams from its own pages and they share the loads of x.
            // The last row of an odd slice pairs with itself (written twice). One call site: C2 inlines the kernel
            // into this loop, and a second copy made the method too big to compile well (1.5x slower).
            int gap = (rowEnd - rowStart) / 2, passes = gap + (rowEnd - rowStart) % 2;
            for (int p = 0; p < passes; p++) {
                int r = p < gap ? rowStart + p : rowEnd - 1, step = p < gap ? gap : 0;
                dot2RowsQ6_K(w, r * rowBytes, (r + step) * rowBytes, blocks, xq, xOffset, buf.xd, t * blocks, buf.scales,
                        out, (long) t * outStride + r, step);
            }
        }
    }

    /**
     * The Q6_K rows at bytes at0 and at1 . the token's Q8_K activations, into out at o0 and o0 + gap: per block, sum
     * over groups g of 16 of scale_g * sum((v - 32) q), the -32 taken once per group from the sum of its q (xOffset),
     * times d_w * d_x.
     * Byte l of each 64-byte half of ql holds the low 4 bits of elements l (low nibble) and l + 64 (high), byte l + 32
     * those of l + 32 and l + 96; byte l of qh their top 2 bits (bits 0-1, 2-3, 4-5, 6-7 for l, l + 32, l + 64, l + 96).
     * Written out without helper methods: C2 must inline every Vector API call, or it boxes the vectors (50x slower).
     */
    private static void dot2RowsQ6_K(MemorySegment w, long at0, long at1, int blocks, float[] xq, float[] xOffset,
                                     float[] xd, int dOff, float[] scales, MemorySegment out, long o0, int gap) {
        FloatVector acc0 = FloatVector.zero(F), acc1 = acc0;
        for (int b = 0; b < blocks; b++, at0 += 210, at1 += 210) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, t0 = s0, t1 = s0;
            for (int i = 0; i < 16; i += F.length()) {
                FloatVector off = FloatVector.fromArray(F, xOffset, 16 * b + i);
                FloatVector scale0 = (FloatVector) ByteVector.fromMemorySegment(FB, w, at0 + 192 + i, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2F, F, 0);
                FloatVector scale1 = (FloatVector) ByteVector.fromMemorySegment(FB, w, at1 + 192 + i, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.B2F, F, 0);
                scale0.intoArray(scales, i);
                scale1.intoArray(scales, 16 + i);
                s0 = scale0.fma(off, s0);
                t0 = scale1.fma(off, t0);
            }
            for (int half = 0; half < 2; half++) {
                long ql0 = at0 + 64L * half, qh0 = at0 + 128 + 32L * half;
                long ql1 = at1 + 64L * half, qh1 = at1 + 128 + 32L * half;
                int o = QK_K * b + 128 * half, g = 8 * half;
                // 32 values at a time in 16-bit lanes (two bytes each; the masks drop the bits a shift moves across)
                ShortVector a = ShortVector.fromMemorySegment(S256, w, ql0, ByteOrder.LITTLE_ENDIAN);
                ShortVector c = ShortVector.fromMemorySegment(S256, w, ql0 + 32, ByteOrder.LITTLE_ENDIAN);
                ShortVector h = ShortVector.fromMemorySegment(S256, w, qh0, ByteOrder.LITTLE_ENDIAN);
                ByteVector v0 = a.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 4).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector v1 = c.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 2).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector v2 = a.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F).or(h.and((short) 0x3030)).reinterpretAsBytes();
                ByteVector v3 = c.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F)
                        .or(h.lanewise(VectorOperators.LSHR, 2).and((short) 0x3030)).reinterpretAsBytes();
                a = ShortVector.fromMemorySegment(S256, w, ql1, ByteOrder.LITTLE_ENDIAN);
                c = ShortVector.fromMemorySegment(S256, w, ql1 + 32, ByteOrder.LITTLE_ENDIAN);
                h = ShortVector.fromMemorySegment(S256, w, qh1, ByteOrder.LITTLE_ENDIAN);
                ByteVector u0 = a.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 4).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector u1 = c.and((short) 0x0F0F).or(h.lanewise(VectorOperators.LSHL, 2).and((short) 0x3030)).reinterpretAsBytes();
                ByteVector u2 = a.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F).or(h.and((short) 0x3030)).reinterpretAsBytes();
                ByteVector u3 = c.lanewise(VectorOperators.LSHR, 4).and((short) 0x0F0F)
                        .or(h.lanewise(VectorOperators.LSHR, 2).and((short) 0x3030)).reinterpretAsBytes();
                for (int p = 0; p < 32 / F.length(); p++, o += F.length()) {
                    FloatVector x0 = FloatVector.fromArray(F, xq, o), x1 = FloatVector.fromArray(F, xq, o + 32);
                    FloatVector x2 = FloatVector.fromArray(F, xq, o + 64), x3 = FloatVector.fromArray(F, xq, o + 96);
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
            float d0 = Float.float16ToFloat(w.get(U16_LE, at0 + 208)) * xd[dOff + b];
            float d1 = Float.float16ToFloat(w.get(U16_LE, at1 + 208)) * xd[dOff + b];
            acc0 = s0.add(s1).fma(FloatVector.broadcast(F, d0), acc0);
            acc1 = t0.add(t1).fma(FloatVector.broadcast(F, d1), acc1);
        }
        out.setAtIndex(F32, o0, acc0.reduceLanes(VectorOperators.ADD));
        out.setAtIndex(F32, o0 + gap, acc1.reduceLanes(VectorOperators.ADD));
    }

    /** sum over blocks of d_w * d_x * sum over groups of 16 (scale_g * sum(u * q)), 16 lanes at a time. */
    private static float dotVector(Row row, int block, int blocks, Buffers buf, int xOff, int dOff) {
        FloatVector acc = FloatVector.zero(F256);
        short[] u = row.u, xq = buf.xq;
        for (int b = 0; b < blocks; b++) {
            IntVector dots = IntVector.zero(I256);
            for (int g = b * block / 16; g < (b + 1) * block / 16; g++) {
                ShortVector p = ShortVector.fromArray(S256, u, 16 * g).mul(ShortVector.fromArray(S256, xq, xOff + 16 * g));
                IntVector s = ((IntVector) p.convertShape(VectorOperators.S2I, I256, 0)).add(p.convertShape(VectorOperators.S2I, I256, 1));
                dots = dots.add(s.mul(row.scale[g])); // |u * q| <= 32 * 127: exact in shorts
            }
            acc = ((FloatVector) dots.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F256, row.d[b] * buf.xd[dOff + b]), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** The same integers without vectors. */
    private static float dotScalar(Row row, int block, int blocks, Buffers buf, int xOff, int dOff) {
        float sum = 0;
        for (int b = 0; b < blocks; b++) {
            int dots = 0;
            for (int g = b * block / 16; g < (b + 1) * block / 16; g++) {
                int dot = 0;
                for (int l = 0; l < 16; l++) dot += row.u[16 * g + l] * buf.xq[xOff + 16 * g + l];
                dots += row.scale[g] * dot;
            }
            sum += row.d[b] * buf.xd[dOff + b] * (float) dots;
        }
        return sum;
    }

    /** Q4_K's offsets: sum over blocks of dmin_w * d_x * sum_j (min_j * the token's q summed over sub-block j). */
    private static float minsTerm(Row row, int blocks, Buffers buf, int dOff, int sOff) {
        float sum = 0;
        for (int b = 0; b < blocks; b++) {
            int mins = 0;
            for (int j = 0; j < 8; j++) {
                mins += row.min[8 * b + j] * (buf.xsum[sOff + 16 * b + 2 * j] + buf.xsum[sOff + 16 * b + 2 * j + 1]);
            }
            sum += row.dmin[b] * buf.xd[dOff + b] * (float) mins;
        }
        return sum;
    }
}
