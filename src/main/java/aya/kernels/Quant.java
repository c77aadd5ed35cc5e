package aya.kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Q8_0 and Q4_0 blocks, with GGUF's numerics (ggml-quants.c, quantize_row_q8_0_ref / quantize_row_q4_0_ref) and layout.
 * A block holds 32 weights: a little-endian fp16 scale d, then
 * <ul>
 *   <li>Q8_0: 32 int8 q, weight = q * d, with d = max|x| / 127 and q = roundf(x / d) (half away from zero);
 *   <li>Q4_0: 16 bytes, byte j holds element j in its low nibble and element j + 16 in its high nibble,
 *       weight = (nibble - 8) * d, with d = m / -8 where m is the signed value of largest magnitude
 *       (the first one on ties) and nibble = min(15, trunc(x / d + 8.5)).
 * </ul>
 * Like GGUF, the quantized values use the f32 scale; only the stored scale is rounded to fp16.
 *
 * <p>The native kernels also quantize each token's activations to Q8_0 blocks in this way (in C) for their integer
 * dot products; the Java kernels dequantize the weights to f32 instead and keep the activations f32.
 */
public final class Quant {

    public static final int BLOCK = 32;
    static final ValueLayout.OfShort U16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    private Quant() {
    }

    /** C's roundf: halves round away from zero (Math.round rounds them up, toward +inf). */
    static int roundf(float v) {
        return v < 0 ? -Math.round(-v) : Math.round(v);
    }

    /** fp16 bits of v, round to nearest even (GGML_FP32_TO_FP16). */
    static short f16(float v) {
        return Float.floatToFloat16(v);
    }

    /** n weights src[srcOff, srcOff + n) (n a multiple of 32) as blocks of {@code type} at dst[dstOff...] (bytes). */
    public static void quantizeRow(WeightType type, float[] src, int srcOff, int n, MemorySegment dst, long dstOff) {
        switch (type) {
            case Q8_0 -> quantizeQ8_0(src, srcOff, n, dst, dstOff);
            case Q4_0 -> quantizeQ4_0(src, srcOff, n, dst, dstOff);
            default -> throw new IllegalArgumentException(type + " is not a quantized type");
        }
    }

    static void quantizeQ8_0(float[] x, int off, int n, MemorySegment dst, long at) {
        checkBlocks(n);
        for (int b = 0; b < n / BLOCK; b++, at += WeightType.Q8_0.blockBytes) {
            int base = off + b * BLOCK;
            float amax = 0;
            for (int j = 0; j < BLOCK; j++) amax = Math.max(amax, Math.abs(x[base + j]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            dst.set(U16_LE, at, f16(d));
            for (int j = 0; j < BLOCK; j++) {
                dst.set(ValueLayout.JAVA_BYTE, at + 2 + j, (byte) roundf(x[base + j] * id));
            }
        }
    }

    static void quantizeQ4_0(float[] x, int off, int n, MemorySegment dst, long at) {
        checkBlocks(n);
        for (int b = 0; b < n / BLOCK; b++, at += WeightType.Q4_0.blockBytes) {
            int base = off + b * BLOCK;
            float amax = 0, max = 0;
            for (int j = 0; j < BLOCK; j++) {
                float v = x[base + j];
                if (amax < Math.abs(v)) { // strictly greater: the first of equal magnitudes wins, as in GGUF
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            dst.set(U16_LE, at, f16(d));
            for (int j = 0; j < BLOCK / 2; j++) {
                int lo = Math.min(15, (int) (x[base + j] * id + 8.5f));            // (int8_t) cast: truncation
                int hi = Math.min(15, (int) (x[base + BLOCK / 2 + j] * id + 8.5f));
                dst.set(ValueLayout.JAVA_BYTE, at + 2 + j, (byte) (lo | (hi << 4)));
            }
        }
    }

    /**
     * Row {@code row} of a [rows, cols] matrix of {@code srcType} (F32/F16/BF16), quantized to {@code type} at byte
     * {@code dstOff} of dst. scratch holds at least cols floats.
     */
    public static void quantizeMatrixRow(WeightType srcType, MemorySegment src, long row, int cols,
                                         WeightType type, MemorySegment dst, long dstOff, float[] scratch) {
        long first = row * cols;
        if (srcType == WeightType.BF16) {
            for (int i = 0; i < cols; i++) scratch[i] = Float.intBitsToFloat(src.getAtIndex(U16_LE, first + i) << 16);
        } else {
            for (int i = 0; i < cols; i++) scratch[i] = JavaKernels.weight(srcType, src, first + i);
        }
        quantizeRow(type, scratch, 0, cols, dst, dstOff);
    }

    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[0]);

    /** Row {@code row} of a [rows, dim] matrix of {@code type} blocks, dequantized into out (f32, native order). */
    static void dequantizeRowInto(WeightType type, MemorySegment table, long row, int dim, MemorySegment out) {
        float[] values = ROW.get();
        if (values.length < dim) {
            values = new float[dim];
            ROW.set(values); // kept per thread: no allocation per token
        }
        dequantizeRow(type, table, row * type.rowBytes(dim), dim, values, 0);
        MemorySegment.copy(values, 0, out, F32, 0, dim);
    }

    /** out[outOff, outOff + n) = the n weights of {@code type} blocks starting at byte {@code at} of src, as f32. */
    public static void dequantizeRow(WeightType type, MemorySegment src, long at, int n, float[] out, int outOff) {
        if (KQuant.handles(type)) {
            KQuant.dequantizeRow(type, src, at, n, out, outOff);
            return;
        }
        checkBlocks(n);
        for (int b = 0; b < n / BLOCK; b++, at += type.blockBytes) {
            float d = Float.float16ToFloat(src.get(U16_LE, at));
            int o = outOff + b * BLOCK;
            if (type == WeightType.Q8_0) {
                for (int j = 0; j < BLOCK; j++) out[o + j] = src.get(ValueLayout.JAVA_BYTE, at + 2 + j) * d;
            } else if (type == WeightType.Q4_0) {
                for (int j = 0; j < BLOCK / 2; j++) {
                    int q = src.get(ValueLayout.JAVA_BYTE, at + 2 + j) & 0xFF;
                    out[o + j] = ((q & 0x0F) - 8) * d;
                    out[o + j + BLOCK / 2] = ((q >>> 4) - 8) * d;
                }
            } else {
                throw new IllegalArgumentException(type + " is not a quantized type");
            }
        }
    }

    private static void checkBlocks(int n) {
        if (n % BLOCK != 0) {
            throw new IllegalArgumentException("quantized rows need a multiple of " + BLOCK + " weights, got " + n);
        }
    }
}
