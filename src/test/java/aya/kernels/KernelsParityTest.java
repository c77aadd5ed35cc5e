package aya.kernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every Kernels method x weight type x backend against a plain scalar Java reference (double precision, written from the
 * Kernels javadoc), with odd sizes for the SIMD tails and work split into uneven slices as the thread pool does.
 * Backends: the native library with every ISA this CPU can run (each forced in turn), plus the pure-Java backend.
 * ISAs this machine lacks are skipped (reported as aborted), never silently passed.
 */
class KernelsParityTest {

    /** The forced native ISAs; "java" is the Vector API backend. */
    static Stream<String> backends() {
        return Stream.of("java", "native:scalar", "native:avx2", "native:avx512", "native:neon");
    }

    static Kernels kernels(String backend) {
        if (backend.equals("java")) {
            return new JavaKernels();
        }
        if (backend.startsWith("native:")) {
            String isa = backend.substring("native:".length());
            Assumptions.assumeTrue(NativeKernels.isaAvailable(isa), isa + " is not available on this machine");
            return NativeKernels.load(isa);
        }
        throw new IllegalArgumentException(backend);
    }

    /**
     * Matmul tolerance relative to sum_i |w_i x_i| (the size of what is summed): f32 accumulation error grows about
     * like sqrt(n) ulps. 16-bit weights widen to f32 exactly, so every unquantized type gets the same bound.
     */
    static double matmulTolerance(WeightType type, int inDim) {
        return switch (type) {
            case F32, F16, BF16 -> 2e-6 * Math.sqrt(inDim) + 1e-6;
            case Q8_0, Q4_0 -> throw new IllegalArgumentException("quantized types are tested in QuantTest");
            case Q5_0, Q4_K, Q6_K -> throw new IllegalArgumentException("GGUF k-quant types are tested in KQuantTest");
        };
    }

    private static Arena arena;

    @BeforeAll
    static void openArena() {
        arena = Arena.ofShared();
    }

    @AfterAll
    static void closeArena() {
        arena.close();
        if (NativeKernels.isaAvailable("auto")) {
            NativeKernels.load("auto"); // leave the process on the default ISA for the tests that follow
        }
    }

    // ---- helpers ----

    static MemorySegment floats(float[] v) {
        MemorySegment s = arena.allocate(4L * Math.max(1, v.length), 64);
        MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT, 0, v.length);
        return s;
    }

    static float[] toFloats(MemorySegment s, int n) {
        return s.asSlice(0, 4L * n).toArray(ValueLayout.JAVA_FLOAT);
    }

    static float[] random(SplittableRandom rnd, int n, double lo, double hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rnd.nextDouble(lo, hi);
        return v;
    }

    static short toBf16(float f) { // round to nearest even
        int bits = Float.floatToRawIntBits(f);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    static float bf16ToFloat(short h) {
        return Float.intBitsToFloat((h & 0xffff) << 16);
    }

    /** A weight matrix in {@code type} and the exact f32 values it holds. */
    record Weights(MemorySegment segment, float[] values) {
        static Weights random(WeightType type, SplittableRandom rnd, int n) {
            float[] raw = KernelsParityTest.random(rnd, n, -2, 2);
            MemorySegment s = arena.allocate(Math.max(2, type.rowBytes(n)), 64);
            float[] exact = new float[n];
            for (int i = 0; i < n; i++) {
                switch (type) {
                    case F32 -> { s.setAtIndex(ValueLayout.JAVA_FLOAT, i, raw[i]); exact[i] = raw[i]; }
                    case F16 -> {
                        // include f16 subnormals (|x| < 2^-14) now and then
                        float v = i % 13 == 5 ? raw[i] * 1e-5f : raw[i];
                        short h = Float.floatToFloat16(v);
                        s.setAtIndex(ValueLayout.JAVA_SHORT, i, h);
                        exact[i] = Float.float16ToFloat(h);
                    }
                    case BF16 -> {
                        short h = toBf16(raw[i]);
                        s.setAtIndex(ValueLayout.JAVA_SHORT, i, h);
                        exact[i] = bf16ToFloat(h);
                    }
                    default -> throw new IllegalArgumentException(type.toString());
                }
            }
            return new Weights(s, exact);
        }
    }

    static Stream<Arguments> backendsAndTypes() {
        List<Arguments> out = new ArrayList<>();
        backends().forEach(b -> {
            for (WeightType t : List.of(WeightType.F32, WeightType.F16, WeightType.BF16)) out.add(Arguments.of(b, t));
        });
        return out.stream();
    }

    // ---- matmul and embed ----

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndTypes")
    void matmulMatchesReference(String backend, WeightType type) {
        Kernels k = kernels(backend);
        int[][] shapes = { // rows, inDim, tokens
                {1, 1, 1}, {3, 7, 1}, {5, 8, 2}, {7, 17, 3}, {33, 255, 1}, {19, 256, 5}, {21, 300, 4},
                {64, 2048, 1}, {37, 2048, 7}, {4, 16, 64}, {50, 513, 9}, {130, 64, 2},
        };
        SplittableRandom rnd = new SplittableRandom(42 + type.ordinal());
        for (int[] shape : shapes) {
            int rows = shape[0], inDim = shape[1], tokens = shape[2];
            int outStride = rows + 5; // output rows wider than the matrix, as in a fused projection
            Weights w = Weights.random(type, rnd, rows * inDim);
            float[] x = random(rnd, tokens * inDim, -1, 1);
            MemorySegment xs = floats(x);
            MemorySegment out = floats(new float[tokens * outStride]);
            // uneven slices, as Parallel hands them to threads
            int[] cuts = {0, rows / 3, rows / 3 + (rows > 2 ? 1 : 0), rows};
            for (int s = 0; s + 1 < cuts.length; s++) {
                k.matmul(type, w.segment(), xs, out, tokens, inDim, outStride, cuts[s], cuts[s + 1]);
            }
            float[] got = toFloats(out, tokens * outStride);
            double tol = matmulTolerance(type, inDim);
            for (int t = 0; t < tokens; t++) {
                for (int r = 0; r < rows; r++) {
                    double want = 0, scale = 0;
                    for (int i = 0; i < inDim; i++) {
                        double p = (double) w.values()[r * inDim + i] * x[t * inDim + i];
                        want += p;
                        scale += Math.abs(p);
                    }
                    float g = got[t * outStride + r];
                    if (!(Math.abs(g - want) <= tol * scale + 1e-30)) {
                        fail(String.format("%s %s %dx%d tokens %d: out[%d][%d] = %.9g, reference %.9g",
                                backend, type, rows, inDim, tokens, t, r, g, want));
                    }
                }
                for (int r = rows; r < outStride; r++) {
                    assertEquals(0f, got[t * outStride + r], backend + " wrote outside its rows");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndTypes")
    void embedWidensExactly(String backend, WeightType type) {
        Kernels k = kernels(backend);
        int rows = 6, dim = 37;
        Weights table = Weights.random(type, new SplittableRandom(7), rows * dim);
        MemorySegment out = floats(new float[dim]);
        for (long row : new long[]{0, 3, rows - 1}) {
            k.embed(type, table.segment(), row, dim, out);
            float[] got = toFloats(out, dim);
            for (int i = 0; i < dim; i++) {
                assertEquals(table.values()[(int) row * dim + i], got[i], 0f, backend + " " + type + " row " + row + " [" + i + "]");
            }
        }
    }

    // ---- the f32 ops ----

    @ParameterizedTest
    @MethodSource("backends")
    void layerNormMatchesReference(String backend) {
        Kernels k = kernels(backend);
        SplittableRandom rnd = new SplittableRandom(3);
        for (int dim : new int[]{1, 7, 8, 33, 2048}) {
            int tokens = 3;
            float[] x = random(rnd, tokens * dim, 3, 9); // an offset mean, as in the residual stream
            float[] w = random(rnd, dim, -2, 2);
            float eps = 1e-5f;
            MemorySegment xs = floats(x), out = floats(new float[tokens * dim]);
            k.layerNorm(xs, floats(w), out, tokens, dim, eps);
            float[] got = toFloats(out, tokens * dim);
            for (int t = 0; t < tokens; t++) {
                double mean = 0, var = 0;
                for (int i = 0; i < dim; i++) mean += x[t * dim + i];
                mean /= dim;
                for (int i = 0; i < dim; i++) var += (x[t * dim + i] - mean) * (x[t * dim + i] - mean);
                var /= dim;
                for (int i = 0; i < dim; i++) {
                    double want = (x[t * dim + i] - mean) / Math.sqrt(var + eps) * w[i];
                    assertEquals(want, got[t * dim + i], 2e-5 * Math.max(1, Math.abs(want)), backend + " layerNorm dim " + dim);
                }
            }
            // in place (out == x) gives the same numbers
            k.layerNorm(xs, floats(w), xs, tokens, dim, eps);
            assertArrayEquals(got, toFloats(xs, tokens * dim), backend + " in-place layerNorm");
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void ropeRotatesInterleavedPairs(String backend) {
        Kernels k = kernels(backend);
        int tokens = 3, heads = 5, headDim = 6, pos0 = 4, positions = 8, half = headDim / 2;
        float[] cos = new float[positions * half], sin = new float[positions * half];
        for (int p = 0; p < positions; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * Math.pow(50000, -2.0 * i / headDim);
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
            }
        }
        float[] v = random(new SplittableRandom(5), tokens * heads * headDim, -1, 1);
        MemorySegment vs = floats(v);
        k.ropeInterleaved(vs, tokens, heads, headDim, pos0, floats(cos), floats(sin));
        float[] got = toFloats(vs, v.length);
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < half; i++) {
                    int at = (t * heads + h) * headDim + 2 * i;
                    double angle = (pos0 + t) * Math.pow(50000, -2.0 * i / headDim);
                    double a = v[at], b = v[at + 1];
                    assertEquals(a * Math.cos(angle) - b * Math.sin(angle), got[at], 1e-6, backend + " rope even");
                    assertEquals(a * Math.sin(angle) + b * Math.cos(angle), got[at + 1], 1e-6, backend + " rope odd");
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void attentionMatchesReference(String backend) {
        Kernels k = kernels(backend);
        int[][] cases = { // tokens, pos0, capacity, window, headDim
                {1, 0, 8, 0, 16}, {1, 11, 16, 0, 19}, {4, 5, 16, 0, 128}, {3, 20, 6, 5, 24}, {5, 30, 7, 7, 9},
                {2, 40, 64, 0, 33}, {6, 4094, 4096, 4096, 8},
                // a ring that wraps inside a window of more keys than one pass of the weighted sum takes (256), head
                // sizes of whole vectors plus a tail on both 8 and 16 lanes
                {3, 1000, 384, 300, 40}, {2, 700, 720, 0, 48},
        };
        SplittableRandom rnd = new SplittableRandom(11);
        // GQA groups of 3, 4 (Tiny Aya's 16 / 4) and 5 (four heads together and one left over)
        for (int[] c : cases) for (int heads : new int[] {6, 8, 10}) {
            int tokens = c[0], pos0 = c[1], capacity = c[2], window = c[3], headDim = c[4];
            int kvHeads = 2, group = heads / kvHeads, items = tokens * heads;
            float[] q = random(rnd, items * headDim, -1, 1);
            float[] kc = random(rnd, capacity * kvHeads * headDim, -1, 1);
            float[] vc = random(rnd, capacity * kvHeads * headDim, -1, 1);
            float scale = (float) (3 / Math.sqrt(headDim)); // sharper than the model's, to exercise max subtraction
            MemorySegment out = floats(new float[items * headDim]);
            MemorySegment scratch = floats(new float[capacity]);
            MemorySegment qs = floats(q), ks = floats(kc), vs = floats(vc);
            int[] cuts = {0, items / 3, items - 1, items};
            for (int s = 0; s + 1 < cuts.length; s++) {
                k.attention(qs, ks, vs, out, tokens, pos0, heads, kvHeads, headDim, capacity, window, scale, scratch, cuts[s], cuts[s + 1]);
            }
            float[] got = toFloats(out, items * headDim);
            for (int t = 0; t < tokens; t++) {
                int pos = pos0 + t;
                int lo = window > 0 ? Math.max(0, pos - window + 1) : 0;
                for (int h = 0; h < heads; h++) {
                    int kvBase = (h / group) * headDim;
                    double[] scores = new double[pos - lo + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int p = lo; p <= pos; p++) {
                        int slot = (p % capacity) * kvHeads * headDim + kvBase;
                        double dot = 0;
                        for (int i = 0; i < headDim; i++) dot += (double) q[(t * heads + h) * headDim + i] * kc[slot + i];
                        scores[p - lo] = dot * scale;
                        max = Math.max(max, scores[p - lo]);
                    }
                    for (int j = 0; j < scores.length; j++) { scores[j] = Math.exp(scores[j] - max); sum += scores[j]; }
                    for (int i = 0; i < headDim; i++) {
                        double want = 0;
                        for (int p = lo; p <= pos; p++) want += scores[p - lo] / sum * vc[(p % capacity) * kvHeads * headDim + kvBase + i];
                        float g = got[(t * heads + h) * headDim + i];
                        assertEquals(want, g, 1e-5, backend + String.format(" attention heads=%d tokens=%d pos0=%d cap=%d window=%d t=%d h=%d i=%d",
                                heads, tokens, pos0, capacity, window, t, h, i));
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void swigluMatchesReference(String backend) {
        Kernels k = kernels(backend);
        SplittableRandom rnd = new SplittableRandom(13);
        for (int n : new int[]{1, 7, 8, 9, 100, 11008}) {
            float[] g = random(rnd, n, -30, 30), u = random(rnd, n, -3, 3);
            MemorySegment gs = floats(g);
            int start = n > 1 ? 1 : 0;
            k.swiglu(gs, floats(u), start, n);
            float[] got = toFloats(gs, n);
            if (start > 0) assertEquals(g[0], got[0], 0f, backend + " swiglu changed an element before start");
            for (int i = start; i < n; i++) {
                double want = g[i] / (1 + Math.exp(-g[i])) * u[i];
                double rel = 2e-6 + 1.2e-7 * Math.abs(g[i]); // e^-g of an f32 argument: |g| ulps
                assertEquals(want, got[i], rel * Math.max(1e-30, Math.abs(want)), backend + " swiglu[" + i + "] of " + g[i]);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void softmaxMatchesReference(String backend) {
        Kernels k = kernels(backend);
        SplittableRandom rnd = new SplittableRandom(17);
        for (int n : new int[]{1, 2, 7, 8, 9, 100, 262144}) {
            float[] x = random(rnd, n, -40, 40);
            MemorySegment xs = floats(x);
            k.softmax(xs, n);
            float[] got = toFloats(xs, n);
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (float v : x) max = Math.max(max, v);
            for (float v : x) sum += Math.exp(v - max);
            // relative: an f32 running sum over n terms drifts about sqrt(n) ulps (the contract allows f32 sums),
            // and rounding x - max to f32 costs |x - max| ulps in the exponent
            for (int i = 0; i < n; i++) {
                double want = Math.exp(x[i] - max) / sum;
                double rel = 2e-6 + 2e-7 * Math.sqrt(n) + 1.2e-7 * (max - x[i]);
                assertEquals(want, got[i], rel * want + 1e-38, backend + " softmax n=" + n + " [" + i + "]");
            }
        }
    }

    /** Same value (relative 2e-6, or within 1e-37 for values f32 flushes), or both NaN, or the same infinity. */
    static void assertSameSpecial(double want, float got, String what) {
        if (Double.isNaN(want) || Float.isNaN(got)) {
            assertTrue(Double.isNaN(want) && Float.isNaN(got), what + ": got " + got + ", reference " + want);
        } else if (Double.isInfinite(want) || Float.isInfinite(got)) {
            assertEquals(want, got, 0.0, what);
        } else {
            assertEquals(want, got, 2e-6 * Math.abs(want) + 1e-37, what);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void nanAndInfinityPropagateAsInTheReference(String backend) {
        Kernels k = kernels(backend);
        float[] g = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 100, -100, 88.5f, -88.5f, 89, -87, 0, -0f,
                1e-30f, 3, -3, 50, -50, 7};
        float[] u = new float[g.length];
        java.util.Arrays.fill(u, 1.5f);
        MemorySegment gs = floats(g);
        k.swiglu(gs, floats(u), 0, g.length);
        float[] got = toFloats(gs, g.length);
        for (int i = 0; i < g.length; i++) {
            // f32 semantics: e^-g overflows to infinity past 88.72
            double e = -g[i] > 88.72283 ? Double.POSITIVE_INFINITY : Math.exp(-g[i]);
            assertSameSpecial(g[i] / (1 + e) * u[i], got[i], backend + " swiglu(" + g[i] + ")");
        }
        for (float poison : new float[]{Float.NaN, Float.POSITIVE_INFINITY}) {
            float[] x = new float[11];
            for (int i = 0; i < x.length; i++) x[i] = i - 5;
            x[7] = poison;
            MemorySegment xs = floats(x);
            k.softmax(xs, x.length);
            for (float v : toFloats(xs, x.length)) {
                assertTrue(Float.isNaN(v), backend + " softmax with a " + poison + " logit must give NaN (as inf - inf), got " + v);
            }
        }
    }
}
