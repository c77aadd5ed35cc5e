package aya.kernels;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The Java kernels against hand-computed values (LayerNorm, RoPE, attention window and ring buffer) and against
 * plain scalar loops (matmul in every dtype, odd sizes that leave vector tails, several tokens and row ranges).
 */
class JavaKernelsTest {

    final Kernels k = new JavaKernels();
    final Arena arena = Arena.ofAuto();

    MemorySegment f32(float... v) {
        MemorySegment s = arena.allocate(Math.max(1, v.length) * 4L, 64);
        MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT, 0, v.length);
        return s;
    }

    float[] read(MemorySegment s, int n) {
        float[] out = new float[n];
        MemorySegment.copy(s, ValueLayout.JAVA_FLOAT, 0, out, 0, n);
        return out;
    }

    /**
     * The pom's "avx2" test run sets aya.test.vectorBits=256 and -XX:UseAVX=2: this checks that the kernels there really
     * ran on 8-lane vectors (the AVX2 code paths), not on whatever the host's widest vectors are.
     */
    @Test
    void vectorsHaveTheWidthTheRunAsksFor() {
        String bits = System.getProperty("aya.test.vectorBits");
        Assumptions.assumeTrue(bits != null, "only the avx2 test run names a width");
        assertEquals(Integer.parseInt(bits), JavaKernels.F.vectorBitSize(), k.name());
    }

    @Test
    void layerNormSubtractsMeanUsesBiasedVarianceAndHasNoBias() {
        // x = [1, 2, 3, 6]: mean 3, deviations [-2, -1, 0, 3], biased variance 14/4 = 3.5
        MemorySegment x = f32(1, 2, 3, 6, /* second token */ 5, 5, 5, 5);
        MemorySegment w = f32(1, 2, 0.5f, -1);
        MemorySegment out = f32(new float[8]);
        k.layerNorm(x, w, out, 2, 4, 1e-5f);
        double inv = 1 / Math.sqrt(3.5 + 1e-5);
        float[] expect = {(float) (-2 * inv), (float) (-1 * inv * 2), 0, (float) (3 * inv * -1), 0, 0, 0, 0};
        assertArrayEquals(expect, read(out, 8), 1e-6f);
        // in place (out == x) gives the same
        k.layerNorm(x, w, x, 2, 4, 1e-5f);
        assertArrayEquals(expect, read(x, 8), 1e-6f);
    }

    @Test
    void ropeRotatesInterleavedPairsByTheirOwnAngle() {
        // one token at position 1 (tables start at pos0 = 1), 2 heads of head_dim 4: pairs (0,1) and (2,3)
        float c0 = (float) Math.cos(0.5), s0 = (float) Math.sin(0.5), c1 = (float) Math.cos(0.25), s1 = (float) Math.sin(0.25);
        MemorySegment cos = f32(9, 9, c0, c1); // row 0 is for position 0 and must not be used
        MemorySegment sin = f32(9, 9, s0, s1);
        MemorySegment v = f32(1, 2, 3, 4, -1, 0, 0, 1);
        k.ropeInterleaved(v, 1, 2, 4, 1, cos, sin);
        float[] expect = {
                1 * c0 - 2 * s0, 2 * c0 + 1 * s0, 3 * c1 - 4 * s1, 4 * c1 + 3 * s1,
                -1 * c0, -1 * s0, -s1, c1};
        assertArrayEquals(expect, read(v, 8), 1e-6f);
    }

    /** 1-d heads make attention hand-computable: out = sum softmax(q k_j scale) v_j over the visible keys. */
    static float attend(float q, float[] keys, float[] values, int from, int to, float scale) {
        double max = Double.NEGATIVE_INFINITY;
        for (int j = from; j <= to; j++) max = Math.max(max, q * keys[j] * scale);
        double num = 0, den = 0;
        for (int j = from; j <= to; j++) {
            double e = Math.exp(q * keys[j] * scale - max);
            num += e * values[j];
            den += e;
        }
        return (float) (num / den);
    }

    @Test
    void slidingWindowSeesExactlyTheLastWindowKeys() {
        // 6 positions, window 3: query at p sees keys max(0, p-2)..p; global (window 0) sees 0..p
        float[] keys = {0.3f, -1, 2, 0.5f, 1.5f, -0.7f};
        float[] values = {10, 20, 30, 40, 50, 60};
        MemorySegment kc = f32(keys), vc = f32(values);
        float[] qs = {1, 0.5f, -1, 2, 1, 0.25f};
        MemorySegment q = f32(qs);
        MemorySegment out = f32(new float[6]);
        MemorySegment scratch = f32(new float[8]);
        k.attention(q, kc, vc, out, 6, 0, 1, 1, 1, 6, 3, 0.5f, scratch, 0, 6);
        for (int p = 0; p < 6; p++) {
            assertEquals(attend(qs[p], keys, values, Math.max(0, p - 2), p, 0.5f), read(out, 6)[p], 1e-4f, "window, query " + p);
        }
        // query 5 with window 3 must not see key 2 (value 30): compare with the hand value including it
        assertNotEquals(attend(qs[5], keys, values, 2, 5, 0.5f), read(out, 6)[5], 1e-3f);
        k.attention(q, kc, vc, out, 6, 0, 1, 1, 1, 6, 0, 0.5f, scratch, 0, 6);
        for (int p = 0; p < 6; p++) {
            assertEquals(attend(qs[p], keys, values, 0, p, 0.5f), read(out, 6)[p], 1e-4f, "global, query " + p);
        }
        // first position sees only itself: out = v0
        assertEquals(10f, read(out, 6)[0], 1e-6f);
    }

    @Test
    void ringBufferWrapsAroundTheCapacity() {
        // positions 0..9 with capacity 4 and window 3: position p's key sits in slot p % 4. After writing 7, 8, 9
        // the ring holds slots {0: 8, 1: 9, 2: 6, 3: 7}. Queries at 8 and 9 (pos0 = 8, two tokens) must read
        // keys 6..8 and 7..9 from the wrapped slots.
        float[] keyOf = new float[10], valueOf = new float[10];
        for (int p = 0; p < 10; p++) {
            keyOf[p] = (float) Math.sin(p + 1);
            valueOf[p] = 100 + p;
        }
        float[] ringK = new float[4], ringV = new float[4];
        for (int p = 6; p < 10; p++) {
            ringK[p % 4] = keyOf[p];
            ringV[p % 4] = valueOf[p];
        }
        MemorySegment q = f32(1.5f, -2f);
        MemorySegment out = f32(0, 0);
        k.attention(q, f32(ringK), f32(ringV), out, 2, 8, 1, 1, 1, 4, 3, 1f, f32(new float[4]), 0, 2);
        assertEquals(attend(1.5f, keyOf, valueOf, 6, 8, 1f), read(out, 2)[0], 1e-4f);
        assertEquals(attend(-2f, keyOf, valueOf, 7, 9, 1f), read(out, 2)[1], 1e-4f);
    }

    @Test
    void groupedQueryHeadsShareTheirKvHead() {
        // 4 query heads, 2 kv heads (groups of 2), head_dim 2, a single position: out = v of the group's kv head
        MemorySegment q = f32(1, 0, 0, 1, 1, 1, -1, 0);
        MemorySegment kc = f32(1, 1, 2, 2);
        MemorySegment vc = f32(3, 4, 5, 6);
        MemorySegment out = f32(new float[8]);
        k.attention(q, kc, vc, out, 1, 0, 4, 2, 2, 1, 0, 1f, f32(new float[1]), 0, 4);
        assertArrayEquals(new float[] {3, 4, 3, 4, 5, 6, 5, 6}, read(out, 8));
    }

    /** Any split of the work items (as the thread pool makes) gives the per-head scalar result; GQA groups of 3. */
    @Test
    void attentionMatchesAScalarReferenceForEverySplitOfTheItems() {
        int tokens = 3, heads = 6, kvHeads = 2, hd = 5, capacity = 7, window = 4, pos0 = 9;
        Random rnd = new Random(3);
        float[] qs = new float[tokens * heads * hd], ks = new float[capacity * kvHeads * hd], vs = new float[capacity * kvHeads * hd];
        for (int i = 0; i < qs.length; i++) qs[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < ks.length; i++) { ks[i] = (float) rnd.nextGaussian(); vs[i] = (float) rnd.nextGaussian(); }
        float[] expect = new float[qs.length];
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                int pos = pos0 + t, kv = h / (heads / kvHeads);
                double[] w = new double[window];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int k = pos - window + 1, i = 0; k <= pos; k++, i++) {
                    int slot = k % capacity;
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += qs[(t * heads + h) * hd + d] * ks[(slot * kvHeads + kv) * hd + d];
                    w[i] = s * 0.3;
                    max = Math.max(max, w[i]);
                }
                for (int i = 0; i < window; i++) { w[i] = Math.exp(w[i] - max); sum += w[i]; }
                for (int k = pos - window + 1, i = 0; k <= pos; k++, i++) {
                    int slot = k % capacity;
                    for (int d = 0; d < hd; d++) expect[(t * heads + h) * hd + d] += (float) (w[i] / sum * vs[(slot * kvHeads + kv) * hd + d]);
                }
            }
        }
        int items = tokens * heads;
        for (int split : new int[] {1, 2, 4, 5, items}) {
            MemorySegment out = f32(new float[qs.length]);
            for (int from = 0; from < items; from += split) {
                k.attention(f32(qs), f32(ks), f32(vs), out, tokens, pos0, heads, kvHeads, hd, capacity, window, 0.3f,
                        f32(new float[capacity]), from, Math.min(items, from + split));
            }
            assertArrayEquals(expect, read(out, qs.length), 1e-5f, "split " + split);
        }
    }

    @Test
    void matmulMatchesScalarLoopsInEveryDtypeAndShape() {
        Random rnd = new Random(7);
        for (WeightType type : new WeightType[] {WeightType.F32, WeightType.BF16, WeightType.F16}) {
            for (int inDim : new int[] {1, 7, 16, 37, 130}) {
                for (int rows : new int[] {1, 5, 13, 37}) {
                    for (int tokens : new int[] {1, 2, 5, 7}) {
                        float[] w = new float[rows * inDim];
                        for (int i = 0; i < w.length; i++) w[i] = round(type, (float) rnd.nextGaussian());
                        float[] x = new float[tokens * inDim];
                        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
                        MemorySegment ws = weights(type, w);
                        int stride = rows + 3; // outStride larger than rows: the gaps must stay untouched
                        MemorySegment out = f32(new float[tokens * stride]);
                        out.fill((byte) 0x7f);
                        // two row ranges, like two workers
                        int split = rows / 2;
                        k.matmul(type, ws, f32(x), out, tokens, inDim, stride, 0, split);
                        k.matmul(type, ws, f32(x), out, tokens, inDim, stride, split, rows);
                        float[] got = read(out, tokens * stride);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < rows; r++) {
                                double s = 0, mag = 0;
                                for (int i = 0; i < inDim; i++) {
                                    s += (double) w[r * inDim + i] * x[t * inDim + i];
                                    mag += Math.abs((double) w[r * inDim + i] * x[t * inDim + i]);
                                }
                                assertEquals(s, got[t * stride + r], 1e-5 * mag + 1e-6,
                                        type + " in " + inDim + " rows " + rows + " tokens " + tokens + " [" + t + "," + r + "]");
                            }
                            for (int r = rows; r < stride; r++) {
                                assertEquals(Float.intBitsToFloat(0x7f7f7f7f), got[t * stride + r], type + ": gap written");
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * The prefill GEMM at the edges of its blocking, whatever the vector width: tokens around the tile (TW), the
     * one-vector tail and the pass size (NC), inDim around the k block (KC), past the widening pass (KR) and not a
     * multiple of the vector length, rows around the micro-kernel (RB) and the row block (MC), row ranges cut at odd places, outStride gaps.
     */
    @Test
    void gemmMatchesScalarLoopsAtTileAndBlockEdges() {
        Random rnd = new Random(11);
        int half = JavaKernels.TW / 2;
        int[][] shapes = { // rows, inDim, tokens, first cut, second cut
                {JavaKernels.RB - 1, JavaKernels.KC + 1, JavaKernels.GEMM_MIN_TOKENS, 0, 1},
                {JavaKernels.RB + 1, 2 * JavaKernels.KC + 7, JavaKernels.TW - 1, 3, 3},
                {2 * JavaKernels.RB, JavaKernels.KC - 1, JavaKernels.TW, 1, 7},
                {13, 37, JavaKernels.TW + 1, 5, 9},
                {JavaKernels.MC + JavaKernels.RB + 1, 40, JavaKernels.TW + half, 4, JavaKernels.MC + 2},
                {JavaKernels.MC + 5, JavaKernels.KC + 9, 2 * JavaKernels.TW + half - 3, 0, 0},
                {11, 21, JavaKernels.NC + half + 1, 2, 10},
                {JavaKernels.RB + 1, JavaKernels.KR + JavaKernels.KC + 3, JavaKernels.TW + 1, 2, 5},
        };
        for (WeightType type : new WeightType[] {WeightType.BF16, WeightType.F32, WeightType.F16}) {
            for (int[] shape : shapes) {
                int rows = shape[0], inDim = shape[1], tokens = shape[2];
                float[] w = new float[rows * inDim];
                for (int i = 0; i < w.length; i++) w[i] = round(type, (float) rnd.nextGaussian());
                float[] x = new float[tokens * inDim];
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
                MemorySegment ws = weights(type, w);
                MemorySegment xs = f32(x);
                int stride = rows + 2;
                MemorySegment out = f32(new float[tokens * stride]);
                out.fill((byte) 0x7f);
                int[] cuts = {0, shape[3], shape[4], rows}; // three workers' row ranges, one may be empty
                for (int c = 0; c + 1 < cuts.length; c++) {
                    if (cuts[c] < cuts[c + 1]) k.matmul(type, ws, xs, out, tokens, inDim, stride, cuts[c], cuts[c + 1]);
                }
                float[] got = read(out, tokens * stride);
                String what = type + " rows " + rows + " in " + inDim + " tokens " + tokens;
                for (int t = 0; t < tokens; t++) {
                    for (int r = 0; r < rows; r++) {
                        double s = 0, mag = 0;
                        for (int i = 0; i < inDim; i++) {
                            s += (double) w[r * inDim + i] * x[t * inDim + i];
                            mag += Math.abs((double) w[r * inDim + i] * x[t * inDim + i]);
                        }
                        assertEquals(s, got[t * stride + r], 1e-5 * mag + 1e-6, what + " [" + t + "," + r + "]");
                    }
                    for (int r = rows; r < stride; r++) {
                        assertEquals(Float.intBitsToFloat(0x7f7f7f7f), got[t * stride + r], what + ": gap written");
                    }
                }
            }
        }
    }

    /**
     * Rows computed two RB blocks at a time (kernel12x2, with 16 lanes) give the same bits as rows computed one block
     * per call (kernel6x2): every row's sum is the same FMA chain whichever micro-kernel runs it.
     */
    @Test
    void gemmRowsGiveTheSameBitsWhateverTheirBlockPairing() {
        Random rnd = new Random(13);
        int rows = 4 * JavaKernels.RB + 1, inDim = JavaKernels.KC + 40, tokens = 2 * JavaKernels.TW + 3;
        float[] w = new float[rows * inDim];
        for (int i = 0; i < w.length; i++) w[i] = round(WeightType.BF16, (float) rnd.nextGaussian());
        float[] x = new float[tokens * inDim];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        MemorySegment ws = weights(WeightType.BF16, w), xs = f32(x);
        MemorySegment whole = f32(new float[tokens * rows]), bySix = f32(new float[tokens * rows]);
        k.matmul(WeightType.BF16, ws, xs, whole, tokens, inDim, rows, 0, rows);
        for (int r = 0; r < rows; r += JavaKernels.RB) { // one block per call: no pairs
            k.matmul(WeightType.BF16, ws, xs, bySix, tokens, inDim, rows, r, Math.min(rows, r + JavaKernels.RB));
        }
        float[] a = read(whole, tokens * rows), b = read(bySix, tokens * rows);
        for (int i = 0; i < a.length; i++) {
            assertEquals(Float.floatToRawIntBits(b[i]), Float.floatToRawIntBits(a[i]), "token " + i / rows + " row " + i % rows);
        }
    }

    /** A prefill GEMM after a larger one on the same thread: the per-thread buffers must not leak old values. */
    @Test
    void gemmBuffersCarryNothingBetweenCalls() {
        Random rnd = new Random(5);
        int[][] shapes = {{50, 300, 40}, {7, 20, JavaKernels.TW + 3}}; // big first, then a small one with padding
        for (int[] shape : shapes) {
            int rows = shape[0], inDim = shape[1], tokens = shape[2];
            float[] w = new float[rows * inDim];
            for (int i = 0; i < w.length; i++) w[i] = round(WeightType.BF16, (float) rnd.nextGaussian() * 100);
            float[] x = new float[tokens * inDim];
            for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * 100;
            MemorySegment out = f32(new float[tokens * rows]);
            k.matmul(WeightType.BF16, weights(WeightType.BF16, w), f32(x), out, tokens, inDim, rows, 0, rows);
            float[] got = read(out, tokens * rows);
            for (int t = 0; t < tokens; t++) {
                for (int r = 0; r < rows; r++) {
                    double s = 0, mag = 0;
                    for (int i = 0; i < inDim; i++) {
                        s += (double) w[r * inDim + i] * x[t * inDim + i];
                        mag += Math.abs((double) w[r * inDim + i] * x[t * inDim + i]);
                    }
                    assertEquals(s, got[t * rows + r], 1e-5 * mag + 1e-6, "rows " + rows + " [" + t + "," + r + "]");
                }
            }
        }
    }

    @Test
    void embedWidensOneRowOfEachDtype() {
        float[] table = {1.5f, -2f, 0.25f, 3f, 65280f, -0.0078125f};
        for (WeightType type : new WeightType[] {WeightType.F32, WeightType.BF16, WeightType.F16}) {
            MemorySegment out = f32(new float[3]);
            k.embed(type, weights(type, table), 1, 3, out);
            assertArrayEquals(new float[] {3f, 65280f, -0.0078125f}, read(out, 3), type.toString());
        }
        // bf16 keeps the top 16 bits: 1 + 2^-7 is exact, 1 + 2^-9 is not representable (was truncated by our writer)
        MemorySegment bits = arena.allocate(4);
        bits.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, (short) 0x3F81);
        MemorySegment out = f32(0);
        k.embed(WeightType.BF16, bits, 0, 1, out);
        assertEquals(1 + 1f / 128, read(out, 1)[0]);
    }

    @Test
    void swigluIsSiluOfGateTimesUp() {
        MemorySegment gate = f32(0, 1, -2, 3);
        MemorySegment up = f32(5, 2, 1, -1);
        k.swiglu(gate, up, 1, 4);
        float[] got = read(gate, 4);
        assertEquals(0f, got[0]); // outside [1, 4): untouched
        assertEquals(1 / (1 + Math.exp(-1)) * 2, got[1], 1e-6);
        assertEquals(-2 / (1 + Math.exp(2)), got[2], 1e-6);
        assertEquals(-3 / (1 + Math.exp(-3)), got[3], 1e-6);
    }

    @Test
    void softmaxIsStableForLargeInputs() {
        MemorySegment x = f32(1000, 1001, 1002);
        k.softmax(x, 3);
        double z = 1 + Math.exp(1) + Math.exp(2);
        assertArrayEquals(new float[] {(float) (1 / z), (float) (Math.E / z), (float) (Math.exp(2) / z)}, read(x, 3), 1e-6f);
    }

    /**
     * Decode (one token) reads a slice's four rows a quarter of the slice apart: every slice length 1..13 (each
     * remainder of the four-row passes, and slices too short for any pass), at odd starts, writes exactly its rows.
     */
    @Test
    void decodeSliceWritesExactlyItsRowsAtEveryRemainder() {
        Random rnd = new Random(11);
        int rows = 20;
        for (WeightType type : new WeightType[] {WeightType.F32, WeightType.BF16}) {
            for (int inDim : new int[] {7, 2 * JavaKernels.F.length() + 3}) { // a vector tail and a scalar one
                float[] w = new float[rows * inDim];
                for (int i = 0; i < w.length; i++) w[i] = round(type, (float) rnd.nextGaussian());
                float[] x = new float[inDim];
                for (int i = 0; i < inDim; i++) x[i] = (float) rnd.nextGaussian();
                MemorySegment ws = weights(type, w), xs = f32(x);
                for (int from : new int[] {0, 3}) {
                    for (int n = 1; n <= 13; n++) {
                        MemorySegment out = f32(new float[rows]);
                        out.fill((byte) 0x7f);
                        k.matmul(type, ws, xs, out, 1, inDim, rows, from, from + n);
                        float[] got = read(out, rows);
                        for (int r = 0; r < rows; r++) {
                            String what = type + " in " + inDim + " slice [" + from + ", " + (from + n) + ") row " + r;
                            if (r < from || r >= from + n) {
                                assertEquals(Float.intBitsToFloat(0x7f7f7f7f), got[r], what + " written");
                                continue;
                            }
                            double s = 0, mag = 0;
                            for (int i = 0; i < inDim; i++) {
                                s += (double) w[r * inDim + i] * x[i];
                                mag += Math.abs((double) w[r * inDim + i] * x[i]);
                            }
                            assertEquals(s, got[r], 1e-5 * mag + 1e-6, what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void quantizedRowsMustBeWholeBlocks() { // Q8_0/Q4_0 results are checked in QuantTest
        assertThrows(IllegalArgumentException.class,
                () -> k.matmul(WeightType.Q8_0, f32(new float[40]), f32(new float[40]), f32(0), 1, 40, 1, 0, 1));
    }

    static float round(WeightType type, float v) {
        return switch (type) {
            case BF16 -> Float.intBitsToFloat(Float.floatToIntBits(v) & 0xffff0000);
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(v));
            default -> v;
        };
    }

    /** Weights stored like a safetensors data section (little-endian), at an odd offset to test unaligned reads. */
    MemorySegment weights(WeightType type, float[] w) {
        int size = type == WeightType.F32 ? 4 : 2;
        MemorySegment s = arena.allocate(w.length * (long) size + 1).asSlice(1);
        for (int i = 0; i < w.length; i++) {
            switch (type) {
                case F32 -> s.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4L * i, w[i]);
                case BF16 -> s.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2L * i,
                        (short) (Float.floatToIntBits(w[i]) >>> 16));
                case F16 -> s.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2L * i,
                        Float.floatToFloat16(w[i]));
                default -> throw new IllegalArgumentException();
            }
        }
        return s;
    }
}
