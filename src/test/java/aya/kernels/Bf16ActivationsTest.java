package aya.kernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Kernels.matmulBf16Activations (aya --activations bf16) on every backend and native ISA this machine runs, against a
 * reference written here: x rounded to the nearest bf16 by comparing the two candidates (not the bit trick the
 * kernels use), exact products and a double-precision sum. Odd inDim, 1 to 13 tokens, rows in uneven slices.
 */
class Bf16ActivationsTest {

    static Stream<String> backends() {
        return Stream.of("java", "native:scalar", "native:avx2", "native:avx512", "native:avx512bf16", "native:neon");
    }

    @AfterAll
    static void defaultIsa() {
        if (Backends.available().contains("native")) {
            NativeKernels.load(); // leave the process on the default ISA (or AYA_ISA) for the tests that follow
        }
    }

    /** The nearest bf16 to finite v, ties to the even bf16, found by comparing the two neighbours in double. */
    static float nearestBf16(float v) {
        if (Math.abs(v) < Float.MIN_NORMAL) {
            return 0f * Math.signum(v); // f32 denormals count as zero (vcvtne2ps2bf16)
        }
        int bits = Float.floatToRawIntBits(v);
        float down = Float.intBitsToFloat(bits & 0xffff0000); // toward zero
        float up = Float.intBitsToFloat((bits & 0xffff0000) + 0x10000); // away from zero
        double dDown = Math.abs((double) v - down), dUp = Math.abs((double) up - v);
        if (dDown != dUp) return dDown < dUp ? down : up;
        return ((bits >>> 16) & 1) == 0 ? down : up;
    }

    @Test
    void roundingToBf16() {
        assertEquals(1.0f, JavaKernels.roundToBf16(1.0f));
        assertEquals(1.0f, JavaKernels.roundToBf16(1f + 0x1p-8f), "halfway: ties to the even 1.0");
        assertEquals(1f + 0x1p-6f, JavaKernels.roundToBf16(1f + 3 * 0x1p-8f), "halfway: ties to the even 1 + 2^-6");
        assertEquals(1f + 0x1p-7f, JavaKernels.roundToBf16(Math.nextUp(1f + 0x1p-8f)));
        assertEquals(-(1f + 0x1p-6f), JavaKernels.roundToBf16(-(1f + 3 * 0x1p-8f)));
        assertEquals(Float.POSITIVE_INFINITY, JavaKernels.roundToBf16(Float.MAX_VALUE), "overflow rounds to inf");
        assertEquals(Float.NEGATIVE_INFINITY, JavaKernels.roundToBf16(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(JavaKernels.roundToBf16(Float.intBitsToFloat(0x7f800001))), "a NaN with a low payload stays NaN");
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(JavaKernels.roundToBf16(-Float.MIN_VALUE)),
                "f32 denormals become a zero of the same sign");
        assertEquals(Float.MIN_NORMAL, JavaKernels.roundToBf16(Float.MIN_NORMAL));
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 100_000; i++) {
            float v = Float.intBitsToFloat(random.nextInt()); // every exponent
            if (Float.isNaN(v) || Float.isInfinite(v) || Math.abs(v) > 3e38f) continue;
            assertEquals(nearestBf16(v), JavaKernels.roundToBf16(v), "bits " + Integer.toHexString(Float.floatToRawIntBits(v)));
        }
    }

    @Test
    void vectorRoundingEqualsTheScalarRoundingBitForBit() {
        SplittableRandom random = new SplittableRandom(13);
        int[] special = {0x7f800001, 0xffc00000, 0x7fffffff, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff, 0x00800000,
                0x80000000, 0x00000000, 0x7f7fffff, 0xff7f8000, 0x3f808000, 0x3f818000, 0x3f80ffff, 0x7f7f7fff};
        try (Arena arena = Arena.ofConfined()) {
            for (int n : new int[] {1, 7, 16, 17, 33, 1000, 4099}) { // whole vectors and every kind of tail
                MemorySegment from = arena.allocate(4L * n, 64), to = arena.allocate(4L * n, 64);
                for (int i = 0; i < n; i++) {
                    int bits = i < special.length ? special[i] : random.nextInt(); // NaN payloads, infinities, denormals too
                    from.setAtIndex(ValueLayout.JAVA_INT, i, bits);
                }
                JavaKernels.roundToBf16(from, to, n);
                float[] staged = new float[n + 4];
                JavaKernels.roundToBf16(from, 1, staged, 3, n - 1); // the GEMM's copy into its stage, at offsets
                for (int i = 0; i < n; i++) {
                    float v = from.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    String what = "n " + n + ", bits " + Integer.toHexString(from.getAtIndex(ValueLayout.JAVA_INT, i));
                    assertEquals(Float.floatToRawIntBits(JavaKernels.roundToBf16(v)), to.getAtIndex(ValueLayout.JAVA_INT, i), what);
                    if (i >= 1) {
                        assertEquals(Float.floatToRawIntBits(JavaKernels.roundToBf16(v)), Float.floatToRawIntBits(staged[i + 2]),
                                "into an array: " + what);
                    }
                }
                assertEquals(0f, staged[2], "into an array: wrote before toOff");
                assertEquals(0f, staged[n + 2], "into an array: wrote past n");
            }
        }
    }

    /**
     * The Java prefill GEMM rounds x while it transposes it into token tiles: the result must be bit for bit the f32
     * GEMM's over x rounded beforehand by the scalar roundToBf16 (same products, same order of sums), for tokens
     * around the GEMM's tile and pass sizes and inDim around its k block, with ties, denormals and huge values in x.
     */
    @Test
    void javaGemmRoundsXAsTheScalarRoundingDoes() {
        JavaKernels k = new JavaKernels();
        SplittableRandom random = new SplittableRandom(17);
        int[][] shapes = { // rows, inDim, tokens
                {7, JavaKernels.KC + 3, JavaKernels.GEMM_MIN_TOKENS}, {13, 2 * JavaKernels.KC, JavaKernels.TW + 1},
                {JavaKernels.RB, 33, JavaKernels.NC + 5}, {20, JavaKernels.F.length() - 1, JavaKernels.TW - 1}};
        int[] special = {0x3f808000, 0x3f818000, 0xbf808000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x7f7f8000, 0x80000000};
        try (Arena arena = Arena.ofConfined()) {
            for (int[] shape : shapes) {
                int rows = shape[0], inDim = shape[1], tokens = shape[2];
                long n = (long) tokens * inDim;
                MemorySegment w = arena.allocate(2L * rows * inDim, 64);
                MemorySegment x = arena.allocate(4 * n, 64), rounded = arena.allocate(4 * n, 64);
                MemorySegment out = arena.allocate(4L * tokens * rows, 64), want = arena.allocate(4L * tokens * rows, 64);
                for (long i = 0; i < (long) rows * inDim; i++) {
                    w.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (Float.floatToRawIntBits((float) random.nextDouble(-2, 2)) >>> 16));
                }
                for (long i = 0; i < n; i++) {
                    int bits = random.nextInt(50) == 0 ? special[random.nextInt(special.length)]
                            : Float.floatToRawIntBits((float) random.nextDouble(-1, 1));
                    x.setAtIndex(ValueLayout.JAVA_INT, i, bits);
                    rounded.setAtIndex(ValueLayout.JAVA_FLOAT, i, JavaKernels.roundToBf16(Float.intBitsToFloat(bits)));
                }
                int cut = rows / 2 + 1;
                k.matmulBf16Activations(w, x, out, tokens, inDim, rows, 0, cut);
                k.matmulBf16Activations(w, x, out, tokens, inDim, rows, cut, rows);
                k.matmul(WeightType.BF16, w, rounded, want, tokens, inDim, rows, 0, rows);
                for (long i = 0; i < (long) tokens * rows; i++) {
                    assertEquals(want.getAtIndex(ValueLayout.JAVA_INT, i), out.getAtIndex(ValueLayout.JAVA_INT, i),
                            rows + "x" + inDim + " tokens " + tokens + ": out element " + i);
                }
            }
        }
    }

    static Kernels kernels(String backend) {
        if (backend.equals("java")) return new JavaKernels();
        String isa = backend.substring("native:".length());
        Assumptions.assumeTrue(NativeKernels.isaAvailable(isa), isa + " is not available on this machine");
        return NativeKernels.load(isa);
    }

    @ParameterizedTest
    @MethodSource("backends")
    void matchesTheReference(String backend) {
        Kernels k = kernels(backend);
        int[][] shapes = { // rows, inDim, tokens
                {1, 1, 1}, {3, 7, 2}, {9, 33, 1}, {40, 255, 3}, {35, 257, 9}, {6, 520, 13}, {70, 64, 4}, {33, 97, 5},
                {17, 300, 6}, {2, 31, 7}, {64, 129, 8}};
        SplittableRandom random = new SplittableRandom(11);
        try (Arena arena = Arena.ofConfined()) {
            for (int[] shape : shapes) {
                int rows = shape[0], inDim = shape[1], tokens = shape[2], outStride = rows + 2;
                MemorySegment w = arena.allocate(2L * rows * inDim, 64);
                MemorySegment x = arena.allocate(4L * tokens * inDim, 64);
                MemorySegment out = arena.allocate(4L * tokens * outStride, 64);
                MemorySegment f32 = arena.allocate(4L * tokens * outStride, 64);
                for (long i = 0; i < (long) rows * inDim; i++) {
                    float v = (float) random.nextDouble(-2, 2);
                    w.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) (Float.floatToRawIntBits(nearestBf16(v)) >>> 16));
                }
                for (long i = 0; i < (long) tokens * inDim; i++) {
                    x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextDouble(-1, 1));
                }
                // uneven slices, as the pool hands them out
                int cut1 = rows / 3, cut2 = rows / 3 + (rows > 2 ? 1 : 0);
                k.matmulBf16Activations(w, x, out, tokens, inDim, outStride, 0, cut1);
                k.matmulBf16Activations(w, x, out, tokens, inDim, outStride, cut1, cut2);
                k.matmulBf16Activations(w, x, out, tokens, inDim, outStride, cut2, rows);
                k.matmul(WeightType.BF16, w, x, f32, tokens, inDim, outStride, 0, rows);
                int differs = 0;
                for (int t = 0; t < tokens; t++) {
                    for (int r = 0; r < outStride; r++) {
                        float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * outStride + r);
                        if (r >= rows) {
                            assertEquals(0f, got, backend + ": wrote past the rows");
                            continue;
                        }
                        double want = 0, scale = 0;
                        for (int i = 0; i < inDim; i++) {
                            float wi = Float.intBitsToFloat(w.getAtIndex(ValueLayout.JAVA_SHORT, (long) r * inDim + i) << 16);
                            double p = (double) wi * nearestBf16(x.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * inDim + i));
                            want += p;
                            scale += Math.abs(p);
                        }
                        double tolerance = (2e-6 * Math.sqrt(inDim) + 1e-6) * scale + 1e-30;
                        assertEquals(want, got, tolerance, backend + " " + rows + "x" + inDim + " tokens " + tokens
                                + ": out[" + t + "][" + r + "]");
                        differs += got != f32.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * outStride + r) ? 1 : 0;
                    }
                }
                if (inDim >= 8) {
                    assertTrue(differs > 0, backend + " " + rows + "x" + inDim + ": bf16 activations gave exactly the f32 results");
                }
            }
        }
    }

    @Test
    void nativeRefusesBadSizes() {
        Assumptions.assumeTrue(Backends.available().contains("native"), "no native library here");
        Kernels k = NativeKernels.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(2L * 4 * 8, 64), x = arena.allocate(4L * 8, 64), out = arena.allocate(4L * 4, 64);
            assertThrows(IllegalArgumentException.class, () -> k.matmulBf16Activations(w, x, out, 2, 8, 4, 0, 4),
                    "x holds one token, not two");
            assertThrows(IllegalArgumentException.class, () -> k.matmulBf16Activations(w, x, out, 1, 8, 4, 0, 5),
                    "five rows of a four-row matrix");
            assertThrows(IllegalArgumentException.class, () -> k.matmulBf16Activations(w, x, out, 1, 8, 4, 3, 2));
            assertThrows(IllegalArgumentException.class, () -> k.matmulBf16Activations(w.asSlice(1), x, out, 1, 7, 4, 0, 1),
                    "misaligned bf16 weights");
        }
    }
}
