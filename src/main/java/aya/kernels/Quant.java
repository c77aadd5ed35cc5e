package aya.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

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
 * <p>Activations for the integer dot products are quantized per token to Q8_0 blocks in the same way (the native
 * kernels do exactly the same), into a byte array of values and a float array of (fp16-rounded) scales.
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

    private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> S128 = ShortVector.SPECIES_128;
    /** The vector quantizer needs 8 float lanes; other machines take the plain loop (same results). */
    static final boolean VECTOR_ACTIVATIONS = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256;

    /**
     * Activation quantization (Q8_0 numerics, the same values as {@link #quantizeQ8_0}): the n floats of x from element
     * xOff become int8 values, stored widened in q[qOff...] (the kernels multiply shorts), and one scale per block
     * s[sOff...], rounded through fp16 as a Q8_0 block stores it.
     */
    static void quantizeActivations(MemorySegment x, long xOff, int n, short[] q, int qOff, float[] s, int sOff) {
        if (VECTOR_ACTIVATIONS) {
            quantizeActivationsVector(x, xOff, n, q, qOff, s, sOff);
            return;
        }
        for (int b = 0; b < n / BLOCK; b++) {
            long base = xOff + (long) b * BLOCK;
            float amax = 0;
            for (int j = 0; j < BLOCK; j++) amax = Math.max(amax, Math.abs(x.getAtIndex(F32, base + j)));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            s[sOff + b] = Float.float16ToFloat(f16(d));
            for (int j = 0; j < BLOCK; j++) {
                q[qOff + b * BLOCK + j] = (short) roundf(x.getAtIndex(F32, base + j) * id);
            }
        }
    }

    /** The same, 8 lanes at a time: roundf as truncation plus a step away from zero where the exact rest is >= 0.5. */
    static void quantizeActivationsVector(MemorySegment x, long xOff, int n, short[] q, int qOff, float[] s, int sOff) {
        for (int b = 0; b < n / BLOCK; b++) {
            long base = (xOff + (long) b * BLOCK) * 4;
            FloatVector v0 = FloatVector.fromMemorySegment(F256, x, base, ByteOrder.nativeOrder());
            FloatVector v1 = FloatVector.fromMemorySegment(F256, x, base + 32, ByteOrder.nativeOrder());
            FloatVector v2 = FloatVector.fromMemorySegment(F256, x, base + 64, ByteOrder.nativeOrder());
            FloatVector v3 = FloatVector.fromMemorySegment(F256, x, base + 96, ByteOrder.nativeOrder());
            FloatVector max = v0.abs().max(v1.abs()).max(v2.abs().max(v3.abs()));
            float d = max.reduceLanes(VectorOperators.MAX) / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            s[sOff + b] = Float.float16ToFloat(f16(d));
            for (int k = 0; k < BLOCK; k += 8) { // one call site: C2 inlines it (four would pass its node budget)
                roundInto(FloatVector.fromMemorySegment(F256, x, base + 4L * k, ByteOrder.nativeOrder()).mul(id), q,
                        qOff + b * BLOCK + k);
            }
        }
    }

    /** roundf of 8 lanes (|v| <= 127.5) into q[at, at + 8): truncate, then step away from zero if the exact rest >= 0.5. */
    private static void roundInto(FloatVector v, short[] q, int at) {
        IntVector t = (IntVector) v.convert(VectorOperators.F2I, 0);
        FloatVector rest = v.sub((FloatVector) t.convert(VectorOperators.I2F, 0)).abs();
        IntVector away = IntVector.broadcast(I256, 1).blend(-1, v.compare(VectorOperators.LT, 0).cast(I256));
        t = t.add(away, rest.compare(VectorOperators.GE, 0.5f).cast(I256));
        ((ShortVector) t.convertShape(VectorOperators.I2S, S128, 0)).intoArray(q, at);
    }

    private static void checkBlocks(int n) {
        if (n % BLOCK != 0) {
            throw new IllegalArgumentException("quantized rows need a multiple of " + BLOCK + " weights, got " + n);
        }
    }
}
