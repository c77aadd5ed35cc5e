package aya.kernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java backend's 16-bit "lane = block" layout of 4-bit weights ({@link PackedNibbles}) and its activations
 * ({@link NibbleActivations}): the packed weights are the file's dequantized values bit for bit
 * ({@link Quant#dequantizeRow}, tested against gguf-py in QuantTest and KQuantTest); the activations are the native
 * backend's Q8_0 ones ({@link Quant#quantizeQ8_0}, bit-exact with native's quantizer per native/tests) value for value;
 * the one-token product equals a scalar reference of the same arithmetic to float rounding of the final sums, and the
 * double product of the dequantized weights and those activations within QuantTest's bound for the native backend;
 * the f32 GEMM (through the widening) the double product with f32 activations, the 16-bit one ({@link NibbleGemm},
 * from 16 tokens at 512-bit vectors) the double product with Q8_0 activations. Runs at 16 lanes (G = 32) and, in the
 * pom's avx2 execution, at 8 (G = 16).
 */
class PackedNibblesTest {

    private static final int G = PackedNibbles.G, LANES = JavaKernels.F.length();
    private static Arena arena;
    private static Parallel pool;

    @BeforeAll
    static void open() {
        arena = Arena.ofShared();
        pool = new Parallel(3);
    }

    @AfterAll
    static void close() {
        pool.close();
        arena.close();
    }

    /** Random blocks: every nibble, f16 scales (and Q4_K's mins) of either sign, every 6-bit Q4_K scale and min. */
    static MemorySegment randomMatrix(Arena arena, WeightType type, int rows, int cols, SplittableRandom rnd) {
        long bytes = rows * type.rowBytes(cols);
        MemorySegment w = arena.allocate(bytes, 64);
        for (long i = 0; i < bytes; i++) w.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
        for (long at = 0; at < bytes; at += type.blockBytes) {
            w.set(Quant.U16_LE, at, (short) (0x1c00 | (rnd.nextInt() & 0x83ff)));
            if (type == WeightType.Q4_K) w.set(Quant.U16_LE, at + 2, (short) (0x1c00 | (rnd.nextInt() & 0x83ff)));
        }
        return w;
    }

    private static float[] dequantized(WeightType type, MemorySegment w, int rows, int cols) {
        float[] values = new float[rows * cols];
        for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, w, r * type.rowBytes(cols), cols, values, r * cols);
        return values;
    }

    /** Gaussian x with outliers, a zero block, and values that land exactly on halves once scaled (roundf's ties). */
    private static float[] activations(int tokens, int cols, SplittableRandom rnd) {
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1);
        for (int i = 0; i < Math.min(32, cols); i++) x[i] = 0;
        if (cols >= 64) { // block 1: max 127, so x / d = x; halves of either sign
            x[32] = 127;
            for (int i = 33; i < 64; i++) x[i] = (i % 2 == 0 ? 1 : -1) * (i - 32.5f);
        }
        return x;
    }

    private static MemorySegment segment(float[] x) {
        MemorySegment s = arena.allocate(4L * x.length, 64);
        MemorySegment.copy(x, 0, s, ValueLayout.JAVA_FLOAT, 0, x.length);
        return s;
    }

    @Test
    void activationsAreTheNativeQ8_0ValuesInLaneOrder() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int cols : new int[]{32, 64, 32 * G + 96, 11008}) {
            float[] x = activations(1, cols, rnd);
            MemorySegment q8 = arena.allocate(WeightType.Q8_0.rowBytes(cols));
            Quant.quantizeQ8_0(x, 0, cols, q8, 0);
            NibbleActivations a = new NibbleActivations();
            a.quantize(segment(x), cols);
            assertEquals((cols / 32 + G - 1) / G, a.groups);
            for (int b = 0; b < a.groups * G; b++) {
                int g = b / G, j = b % G;
                boolean real = b < cols / 32;
                float dx = real ? Float.float16ToFloat(q8.get(Quant.U16_LE, 34L * b)) : 0;
                assertEquals(dx, a.dx[g * G + j], "cols " + cols + " block " + b + " scale");
                int sum = 0;
                for (int k = 0; k < 8; k++) {
                    for (int s = 0; s < 4; s++) {
                        int i = k + NibbleActivations.SLOT_OFFSET[s];
                        int want = real ? q8.get(ValueLayout.JAVA_BYTE, 34L * b + 2 + i) : 0;
                        assertEquals(want, a.xq[((g * 8 + k) * 4 + s) * G + j], "cols " + cols + " block " + b + " x " + i);
                        assertEquals(want, a.xqBytes[((g * 8 + k) * 4 + s) * G + j], "cols " + cols + " block " + b + " x " + i + " (bytes)");
                        sum += want;
                    }
                }
                assertEquals(8 * sum, a.sxq8[g * G + j], "cols " + cols + " block " + b + " sum");
                assertEquals(dx * sum, a.dxSum[g * G + j], "cols " + cols + " block " + b + " dx sum");
            }
        }
    }

    @Test
    void packedWeightsAreTheFilesDequantizedValuesBitForBit() {
        SplittableRandom rnd = new SplittableRandom(5);
        // Q4_0: one block, a group and a remainder (a padded last group); Q4_K: three super-blocks, and 11008
        for (Object[] c : new Object[][]{{WeightType.Q4_0, 32}, {WeightType.Q4_0, 32 * G + 96}, {WeightType.Q4_K, 768},
                {WeightType.Q4_K, 11008}}) {
            WeightType type = (WeightType) c[0];
            int rows = 7, cols = (int) c[1];
            MemorySegment w = randomMatrix(arena, type, rows, cols, rnd);
            float[] want = dequantized(type, w, rows, cols);
            try (JavaKernels k = new JavaKernels()) {
                PackedNibbles p = assertInstanceOf(PackedNibbles.class, k.pack(type, w, rows, cols, pool));
                assertEquals(type, p.sourceType());
                assertEquals(rows, p.rows());
                assertEquals(cols, p.cols());
                long blocks = (long) rows * ((cols / 32 + G - 1) / G) * G;
                // per block 16 bytes of nibbles and Q4_0's f16 scale, or Q4_K's f32 s and o + 8 s
                assertEquals(blocks * (16 + (type == WeightType.Q4_K ? 8 : 2)), p.byteSize());
                for (int r = 0; r < rows; r++) {
                    // the factors stored next to the nibbles (NibbleGemm's scales): the file's s and o + 8 s bit for
                    // bit, from every starting block, and zero for the padding blocks of the last group
                    int padded = (int) (blocks / rows);
                    for (int b0 : new int[]{0, 1, G - 1, padded - 1}) {
                        float[] s = new float[padded - b0], o = new float[padded - b0];
                        p.factors(r, b0, padded - b0, false, s, 0);
                        if (type == WeightType.Q4_K) p.factors(r, b0, padded - b0, true, o, 0);
                        for (int i = 0; i < s.length; i++) {
                            float[] so = fileFactors(type, w, r, cols, b0 + i);
                            assertEquals(Float.floatToRawIntBits(so[0]), Float.floatToRawIntBits(s[i]), type + " row " + r + " block " + (b0 + i) + " s");
                            assertEquals(Float.floatToRawIntBits(so[1]), Float.floatToRawIntBits(o[i]), type + " row " + r + " block " + (b0 + i) + " o + 8 s");
                        }
                    }
                    // from the row's start and from later blocks (the GEMM widens k blocks of 256 from any of them)
                    for (int k0 : new int[]{0, 32, 256, 512}) {
                        if (k0 >= cols || (type == WeightType.Q4_K && k0 % 256 != 0)) continue;
                        float[] got = new float[cols - k0];
                        p.widen(r, k0, cols - k0, got, 0);
                        for (int i = 0; i < got.length; i++) {
                            float expected = want[r * cols + k0 + i];
                            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(got[i]),
                                    type + " row " + r + " weight " + (k0 + i) + ": " + got[i] + " instead of " + expected);
                        }
                    }
                }
            }
        }
    }

    /**
     * Q4_0's f16 scales are widened in vector code by a bit trick ({@code PackedNibbles.F16_BITS}) instead of
     * {@link Float#float16ToFloat}: every finite f16 (subnormals, both zeros and the largest included) as a block's
     * scale gives the file's s bit for bit through {@link PackedNibbles#factors} (the trick's code) and the decode
     * the scalar reference's bits (s widened by Float.float16ToFloat).
     */
    @Test
    void everyFiniteF16ScaleOfQ4_0IsWidenedExactly() {
        short[] finite = new short[65536 - 2 * 1024]; // all but the infinities and NaNs (exponent all ones)
        int n = 0;
        for (int h = 0; h < 65536; h++) if ((h & 0x7C00) != 0x7C00) finite[n++] = (short) h;
        assertEquals(finite.length, n);
        int rows = 31, cols = 2048 * 32; // 31 x 2048 = 63488 blocks: each finite f16 once
        MemorySegment w = randomMatrix(arena, WeightType.Q4_0, rows, cols, new SplittableRandom(11));
        for (int i = 0; i < finite.length; i++) w.set(Quant.U16_LE, 18L * i, finite[i]);
        float[] x = activations(1, cols, new SplittableRandom(12));
        MemorySegment q8 = arena.allocate(WeightType.Q8_0.rowBytes(cols));
        Quant.quantizeQ8_0(x, 0, cols, q8, 0);
        try (JavaKernels k = new JavaKernels()) {
            PackedNibbles p = assertInstanceOf(PackedNibbles.class, k.pack(WeightType.Q4_0, w, rows, cols, pool));
            MemorySegment out = arena.allocate(4L * rows, 64);
            p.matvec(segment(x), out, 0, rows);
            float[] s = new float[cols / 32];
            for (int r = 0; r < rows; r++) {
                p.factors(r, 0, s.length, false, s, 0);
                for (int b = 0; b < s.length; b++) {
                    short h = finite[r * s.length + b];
                    assertEquals(Float.floatToRawIntBits(Float.float16ToFloat(h)), Float.floatToRawIntBits(s[b]), "scale 0x" + Integer.toHexString(h & 0xFFFF));
                }
                float want = scalarReference(WeightType.Q4_0, w, r, cols, q8);
                float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, r);
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got), "row " + r + ": " + got + " instead of " + want);
            }
        }
    }

    /** Infinite and NaN Q4_0 scales, which the widening's bit trick does not hold for, are refused at pack time. */
    @Test
    void q4_0ScalesThatAreNotFiniteAreRefusedAtPackTime() {
        try (JavaKernels k = new JavaKernels()) {
            for (short bad : new short[]{(short) 0x7C00, (short) 0xFC00, (short) 0x7C01, (short) 0xFE00, (short) 0xFFFF}) {
                MemorySegment w = randomMatrix(arena, WeightType.Q4_0, 3, 64, new SplittableRandom(13));
                w.set(Quant.U16_LE, 18L * 5, bad); // row 2, block 1
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> k.pack(WeightType.Q4_0, w, 3, 64, pool));
                assertTrue(e.getMessage().contains("block 1 of row 2") && e.getMessage().contains("not finite"), e.getMessage());
            }
        }
    }

    /** {s, o + 8 s} of row r's block b in the file (Q4_0: o + 8 s is 0), {0, 0} for a padding block past the row. */
    private static float[] fileFactors(WeightType type, MemorySegment w, int r, int cols, int b) {
        if (b >= cols / 32) return new float[]{0f, 0f};
        long at = r * type.rowBytes(cols);
        if (type == WeightType.Q4_0) return new float[]{Float.float16ToFloat(w.get(Quant.U16_LE, at + 18L * b)), 0f};
        long sb = at + 144L * (b / 8);
        float s = Float.float16ToFloat(w.get(Quant.U16_LE, sb)) * KQuant.q4kScale(w, sb, b % 8);
        float o = -(Float.float16ToFloat(w.get(Quant.U16_LE, sb + 2)) * KQuant.q4kMin(w, sb, b % 8));
        return new float[]{s, o + s * 8f};
    }

    /**
     * The kernel's arithmetic in plain Java, lane by lane: per block of lane (block % G) % LANES, the exact integer
     * sum (q - 8) xq times (s dx), plus (o + 8 s) (dx sum xq) for Q4_K, in the kernel's order; the lanes summed as the
     * kernel sums them ({@link JavaKernels#sum}). With s widened by {@link Float#float16ToFloat} and stored as f32 this
     * is also the arithmetic of the layout before section 48, so equal bits mean the same results as that kernel.
     */
    private static float scalarReference(WeightType type, MemorySegment w, int row, int cols, MemorySegment q8) {
        float[] lanes = new float[LANES];
        long at = row * type.rowBytes(cols);
        for (int b = 0; b < cols / 32; b++) {
            float s, o = 0;
            int[] q = new int[32];
            if (type == WeightType.Q4_0) {
                long blk = at + 18L * b;
                s = Float.float16ToFloat(w.get(Quant.U16_LE, blk));
                for (int l = 0; l < 16; l++) {
                    int v = w.get(ValueLayout.JAVA_BYTE, blk + 2 + l) & 0xFF;
                    q[l] = v & 15;
                    q[l + 16] = v >> 4;
                }
            } else {
                long sb = at + 144L * (b / 8);
                int j = b % 8;
                s = Float.float16ToFloat(w.get(Quant.U16_LE, sb)) * KQuant.q4kScale(w, sb, j);
                o = -(Float.float16ToFloat(w.get(Quant.U16_LE, sb + 2)) * KQuant.q4kMin(w, sb, j));
                for (int l = 0; l < 32; l++) {
                    int v = w.get(ValueLayout.JAVA_BYTE, sb + 16 + 32L * (j / 2) + l) & 0xFF;
                    q[l] = j % 2 == 0 ? v & 15 : v >> 4;
                }
            }
            float dx = Float.float16ToFloat(q8.get(Quant.U16_LE, 34L * b));
            int dot = 0, sum = 0;
            for (int l = 0; l < 32; l++) {
                int xq = q8.get(ValueLayout.JAVA_BYTE, 34L * b + 2 + l);
                dot += (q[l] - 8) * xq;
                sum += xq;
            }
            int lane = (b % G) % LANES;
            lanes[lane] = Math.fma((float) dot, s * dx, lanes[lane]);
            if (type == WeightType.Q4_K) lanes[lane] = Math.fma(o + s * 8f, dx * sum, lanes[lane]);
        }
        return JavaKernels.sum(lanes, 0);
    }

    /** {sum of the lanes, sum of |lane|} in double: the reference's result and its rounding's scale. */
    static double[] sumAndSize(float[] lanes) {
        double total = 0, size = 0;
        for (float v : lanes) {
            total += v;
            size += Math.abs(v);
        }
        return new double[]{total, size};
    }

    /**
     * Every loop shape of the packed product: decode (1-3 tokens) over slices of every length 1-13 and longer ones, at
     * starts on and off a multiple of four (every remainder of the four-row passes), for rows of one block up to
     * 11008 inputs with a padded last group; and the GEMM (4, 5 and 33 tokens, 2304 inputs = a KR panel of 2048 and
     * one of 256). Each row of the slice gets its own product and every row outside it stays unwritten (NaN).
     */
    @Test
    void packedProductsMatchTheirReferencesInEveryLoopShape() {
        SplittableRandom rnd = new SplittableRandom(31);
        try (JavaKernels k = new JavaKernels()) {
            for (Object[] c : new Object[][]{{WeightType.Q4_0, 1, 32, 40}, {WeightType.Q4_0, 2, 32 * G + 96, 40},
                    {WeightType.Q4_0, 1, 11008, 9}, {WeightType.Q4_0, 3, 2048, 13}, {WeightType.Q4_K, 1, 512, 40},
                    {WeightType.Q4_K, 2, 256, 40}, {WeightType.Q4_K, 1, 11008, 9}, {WeightType.Q4_K, 3, 768, 13},
                    {WeightType.Q4_0, 4, 2304, 13}, {WeightType.Q4_0, 5, 96, 9}, {WeightType.Q4_K, 4, 2304, 13},
                    {WeightType.Q4_K, 33, 256, 7}}) {
                WeightType type = (WeightType) c[0];
                int tokens = (int) c[1], cols = (int) c[2], rows = (int) c[3];
                MemorySegment w = randomMatrix(arena, type, rows, cols, rnd);
                float[] wHat = dequantized(type, w, rows, cols);
                float[] x = activations(tokens, cols, rnd);
                float[] xHat = new float[x.length]; // the activations as the decode sees them: Q8_0 per block
                MemorySegment q8 = arena.allocate(WeightType.Q8_0.rowBytes(cols) * tokens);
                for (int t = 0; t < tokens; t++) {
                    Quant.quantizeQ8_0(x, t * cols, cols, q8, t * WeightType.Q8_0.rowBytes(cols));
                    Quant.dequantizeRow(WeightType.Q8_0, q8, t * WeightType.Q8_0.rowBytes(cols), cols, xHat, t * cols);
                }
                MemorySegment xs = segment(x);
                PackedMatrix p = k.pack(type, w, rows, cols, pool);
                MemorySegment out = arena.allocate(4L * tokens * rows, 64);
                for (int start : new int[]{0, 3, 4}) {
                    for (int length = 1; start + length <= rows; length += length < 13 ? 1 : 9) {
                        out.fill((byte) 0xFF); // NaN
                        k.matmul(p, xs, out, tokens, rows, start, start + length);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < rows; r++) {
                                float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r);
                                String where = type + " " + tokens + "x" + cols + "x" + rows + " slice " + start + ".."
                                        + (start + length) + " t=" + t + " r=" + r;
                                if (r < start || r >= start + length) {
                                    assertTrue(Float.isNaN(got), where + " is outside the slice but was written: " + got);
                                    continue;
                                }
                                boolean decode = tokens < JavaKernels.GEMM_MIN_TOKENS;
                                boolean quantizedX = decode || NibbleGemm.uses(tokens); // the 16-bit GEMM's x is Q8_0's too
                                double want = 0, size = 0, exact = 0;
                                for (int i = 0; i < cols; i++) {
                                    double term = (double) wHat[r * cols + i] * (quantizedX ? xHat : x)[t * cols + i];
                                    want += term;
                                    size += Math.abs(term);
                                    exact += (double) wHat[r * cols + i] * x[t * cols + i];
                                }
                                if (decode) {
                                    float ref = scalarReference(type, w, r, cols, q8.asSlice(t * WeightType.Q8_0.rowBytes(cols)));
                                    assertEquals(Float.floatToRawIntBits(ref), Float.floatToRawIntBits(got), where + " vs the scalar reference: " + got + " instead of " + ref);
                                    // QuantTest's bound for the native backend, whose activations these are
                                    assertEquals(want, got, 4e-6 * Math.sqrt(cols) * size + 1e-6, where + " vs dequantized");
                                    // and the activations' rounding stays small next to the size of the sum
                                    assertEquals(exact, got, 0.03 * size + 1e-6, where + " vs f32 activations");
                                } else if (quantizedX) { // NibbleGemmTest checks it against its scalar reference
                                    assertEquals(want, got, 4e-6 * Math.sqrt(cols) * size + 1e-6, where + " (16-bit GEMM)");
                                } else {
                                    assertEquals(want, got, KQuantTest.javaBound(cols, size), where + " (GEMM)");
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void otherTypesAreNotPackedHere() {
        try (JavaKernels k = new JavaKernels()) {
            for (WeightType type : new WeightType[]{WeightType.BF16, WeightType.F32}) {
                assertNull(k.pack(type, arena.allocate(4L * 256 * 4, 64), 4, 256, pool), type + " is not packed");
            }
            // Q8_0 at 8 lanes: PackedQ8 (PackedQ8Test)
            // Q6_K: PackedQ6KInt8 at 8 lanes, else PackedQ6K (PackedQ6KTest)
            Class<? extends JavaPackedMatrix> q6k = PackedQ6KInt8.PACKS ? PackedQ6KInt8.class : PackedQ6K.class;
            assertInstanceOf(q6k, k.pack(WeightType.Q6_K, arena.allocate(210L * 4, 64), 4, 256, pool));
        }
    }

    @Test
    void badShapesAreRefusedWithTheReason() {
        try (JavaKernels k = new JavaKernels()) {
            MemorySegment w = arena.allocate(144 * 4, 64);
            IllegalArgumentException partial = assertThrows(IllegalArgumentException.class,
                    () -> k.pack(WeightType.Q4_K, w, 4, 200, pool));
            assertTrue(partial.getMessage().contains("200"), partial.getMessage());
            IllegalArgumentException partialQ4_0 = assertThrows(IllegalArgumentException.class,
                    () -> k.pack(WeightType.Q4_0, w, 4, 40, pool));
            assertTrue(partialQ4_0.getMessage().contains("40"), partialQ4_0.getMessage());
            IllegalArgumentException tooSmall = assertThrows(IllegalArgumentException.class,
                    () -> k.pack(WeightType.Q4_K, w, 8, 256, pool));
            assertTrue(tooSmall.getMessage().contains("needs 1152 bytes, got 576"), tooSmall.getMessage());
        }
    }
}
