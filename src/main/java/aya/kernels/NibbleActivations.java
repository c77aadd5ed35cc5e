package aya.kernels;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One token's activations quantized per block of 32 for the 16-bit products of {@link PackedNibbles} (Q4_0, Q4_K) and
 * {@link PackedQ6K}, in their "lane = block" order. Per block b: dx_b = f16(max|x| / 127) and xq = roundf(x / (max|x| / 127)) in -127..127, exactly the native
 * backend's Q8_0 activations ({@code aya_quantize_activations*}, {@link Quant#quantizeQ8_0}: the scale is rounded to
 * f16, the values are quantized with the f32 one); an all-zero block has dx_b = 0 and xq = 0.
 *
 * <p>Layout, G = {@link PackedNibbles#G} blocks per group (the short lanes of a vector; the last group padded with
 * zero blocks): {@code xq[g][k][slot][G]}, k = 0..7 the block's short position of the weights and slot the nibble of
 * that short (0: weight k, 1: k + 16, 2: k + 8, 3: k + 24; see PackedNibbles), so the kernel reads it in order.
 * Per block: {@code dx}, {@code sxq8} = 8 sum(xq) as a short (|8 sum| <= 8 * 32 * 127 = 32512) and
 * {@code dxSum} = dx * sum(xq); per block and slot {@code minus32} = -32 sum(xq) over the slot's 8 values (PackedQ6K's
 * 16-bit sums start there).
 *
 * <p>One per thread ({@link #of}): every thread of a product quantizes the same x (a few microseconds per call,
 * docs/performance-java.md section 15). Vector code along the lanes = blocks: x is read by gathers at a stride of 32,
 * so each block's max, rounding and sum are vertical (no horizontal reduction).
 */
final class NibbleActivations {

    private static final VectorSpecies<Float> F = JavaKernels.F;
    private static final VectorSpecies<Integer> I = JavaKernels.I;
    private static final int G = PackedNibbles.G;
    private static final int BLOCK = Quant.BLOCK;
    /** Weight index of (short position k, slot s): slot 0 = k, 1 = k + 16, 2 = k + 8, 3 = k + 24. */
    static final int[] SLOT_OFFSET = {0, 16, 8, 24};
    /** x index of lane i of a gather: the same position in F.length() consecutive blocks. */
    private static final int[] STRIDE = strideMap(BLOCK);

    private static final ThreadLocal<NibbleActivations> PER_THREAD = ThreadLocal.withInitial(NibbleActivations::new);

    /** x with zeros after cols up to the last group's end: [groups * G * 32]. */
    private float[] x = new float[0];
    /** The group's 32 x G values, position-major, between the two passes: [32 * G]. */
    private final float[] staged = new float[BLOCK * G];
    /** The lanes' sums of xq on their way into sxq8 and dxSum. */
    private final int[] sums = new int[F.length()];
    /** [groups][8][4][G], see the class comment. */
    short[] xq = new short[0];
    /** xq as bytes, the same order: what PackedNibbles' decode reads (half of xq's bytes; see its dot4Rows). */
    byte[] xqBytes = new byte[0];
    /** Per block: the f16-rounded scale, 8 x the sum of xq, dx x that sum: [groups * G]. */
    float[] dx = new float[0];
    short[] sxq8 = new short[0];
    float[] dxSum = new float[0];
    /** Per block and slot, -32 x the sum of the slot's 8 xq (|.| <= 32512), PackedQ6K's start: [groups][4][G]. */
    short[] minus32 = new short[0];
    int groups;

    /** This thread's buffers, holding x [cols] quantized (cols a multiple of 32). */
    static NibbleActivations of(MemorySegment x, int cols) {
        NibbleActivations a = PER_THREAD.get();
        a.quantize(x, cols);
        return a;
    }

    void quantize(MemorySegment xs, int cols) {
        int blocks = cols / BLOCK;
        groups = (blocks + G - 1) / G;
        int padded = groups * G * BLOCK;
        if (x.length < padded) {
            x = new float[padded];
            xq = new short[padded];
            xqBytes = new byte[padded];
            dx = new float[groups * G];
            sxq8 = new short[groups * G];
            dxSum = new float[groups * G];
            minus32 = new short[groups * 4 * G];
        }
        MemorySegment.copy(xs, JavaKernels.F32, 0, x, 0, cols);
        Arrays.fill(x, cols, padded, 0f); // padding blocks: all zero, so dx = 0 and xq = 0
        // blocks g * G + h .. + F.length() - 1, one per lane; one method with its loops, so C2 compiles it early
        // (as a separate method per lane group it ran in C1, with boxed vectors, for the first few thousand calls)
        for (int g = 0; g < groups; g++) {
            for (int h = 0; h < G; h += F.length()) {
                int first = (g * G + h) * BLOCK;
                FloatVector amax = FloatVector.zero(F);
                for (int p = 0; p < BLOCK; p++) {
                    FloatVector v = FloatVector.fromArray(F, x, first + p, STRIDE, 0);
                    v.intoArray(staged, p * G + h);
                    amax = amax.max(v.abs());
                }
                FloatVector d = amax.div(127f);
                VectorMask<Float> zero = d.compare(VectorOperators.EQ, 0f);
                FloatVector id = FloatVector.broadcast(F, 1f).div(d).blend(0f, zero);
                IntVector sum = IntVector.zero(I);
                for (int s = 0; s < 4; s++) {
                    IntVector slotSum = IntVector.zero(I);
                    for (int k = 0; k < 8; k++) {
                        IntVector q = roundf(FloatVector.fromArray(F, staged, (k + SLOT_OFFSET[s]) * G + h).mul(id));
                        slotSum = slotSum.add(q);
                        int at = ((g * 8 + k) * 4 + s) * G + h;
                        ((ShortVector) q.convertShape(VectorOperators.I2S, PackedNibbles.S_HALF, 0)).intoArray(xq, at);
                        if (JavaKernels.QB != null) {
                            ((ByteVector) q.convertShape(VectorOperators.I2B, JavaKernels.QB, 0)).intoArray(xqBytes, at);
                        } else { // 128-bit vectors: no 4-byte vector
                            for (int i = 0; i < F.length(); i++) xqBytes[at + i] = (byte) q.lane(i);
                        }
                    }
                    sum = sum.add(slotSum);
                    ((ShortVector) slotSum.mul(-32).convertShape(VectorOperators.I2S, PackedNibbles.S_HALF, 0))
                            .intoArray(minus32, (g * 4 + s) * G + h);
                }
                d.intoArray(dx, g * G + h);
                for (int j = g * G + h; j < g * G + h + F.length(); j++) {
                    dx[j] = Float.float16ToFloat(Float.floatToFloat16(dx[j])); // the native scale's rounding
                }
                sum.intoArray(sums, 0);
                for (int i = 0; i < F.length(); i++) {
                    int j = g * G + h + i;
                    sxq8[j] = (short) (8 * sums[i]);
                    dxSum[j] = dx[j] * sums[i];
                }
            }
        }
    }

    /**
     * C's roundf, lane-wise and exactly (as native's round_away): truncate, then one step away from zero when the
     * exact remainder is at least a half. Shared with {@link NibbleGemm}'s quantization of x.
     */
    static IntVector roundf(FloatVector v) {
        IntVector t = (IntVector) v.convert(VectorOperators.F2I, 0);
        FloatVector rest = v.sub((FloatVector) t.convert(VectorOperators.I2F, 0)).abs();
        IntVector away = IntVector.broadcast(I, 1).blend(-1, v.compare(VectorOperators.LT, 0f).cast(I));
        return t.add(away, rest.compare(VectorOperators.GE, 0.5f).cast(I));
    }

    /** Gather / scatter index map of one vector: lane i at i * step. */
    static int[] strideMap(int step) {
        int[] map = new int[F.length()];
        for (int i = 0; i < map.length; i++) map[i] = i * step;
        return map;
    }
}
