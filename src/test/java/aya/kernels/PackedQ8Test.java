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
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Q8_0 repacked for the 16-bit decode ({@link PackedQ8}): the one-token product equals a scalar reference of the same
 * arithmetic (each block's exact integer dot product with native's Q8_0 activations, times d dx, summed per lane in
 * the kernel's order) bit for bit, for every finite f16 scale d, and the double product of the file's weights and
 * those activations within QuantTest's bound for the native backend, including the blocks whose pair sums reach the
 * 16-bit limit (weights -128 and 127 against activations -127 and 127); the GEMM (through the widening) gives the
 * file-layout GEMM's bits. The kernel is checked where the backend packs Q8_0: at 8 lanes (AVX2 hosts, and the pom's
 * avx2 execution); at 16 lanes only that Q8_0 stays in the file's layout.
 */
class PackedQ8Test {

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

    /**
     * Random Q8_0 rows (every byte value, f16 scales of either sign); row 0's weights all -128 and row 1's alternate
     * blocks of all 127 and all -128, the extremes of the 16-bit pair sums.
     */
    private static MemorySegment randomMatrix(int rows, int cols, SplittableRandom rnd) {
        long rowBytes = WeightType.Q8_0.rowBytes(cols), bytes = rows * rowBytes;
        MemorySegment w = arena.allocate(bytes, 64);
        for (long i = 0; i < bytes; i++) w.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
        for (long at = 0; at < bytes; at += 34) {
            w.set(Quant.U16_LE, at, (short) (0x1c00 | (rnd.nextInt() & 0x83ff)));
            long row = at / rowBytes, block = at % rowBytes / 34;
            if (row < Math.min(2, rows - 1)) {
                byte v = row == 0 || block % 2 == 1 ? (byte) -128 : (byte) 127;
                for (int i = 0; i < 32; i++) w.set(ValueLayout.JAVA_BYTE, at + 2 + i, v);
            }
        }
        return w;
    }

    /**
     * Gaussian x with outliers, a zero block, values that land exactly on halves once scaled (roundf's ties), and
     * blocks of all 1 and all -1 (xq all 127 / -127: with row 0's and 1's weights, pair sums of +-32512 and +-32258).
     */
    private static float[] activations(int tokens, int cols, SplittableRandom rnd) {
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1);
        for (int i = 0; i < Math.min(32, cols); i++) x[i] = 0;
        if (cols >= 64) { // block 1: max 127, so x / d = x; halves of either sign
            x[32] = 127;
            for (int i = 33; i < 64; i++) x[i] = (i % 2 == 0 ? 1 : -1) * (i - 32.5f);
        }
        for (int i = 64; i < Math.min(128, cols); i++) x[i] = i < 96 ? 1 : -1;
        return x;
    }

    private static MemorySegment segment(float[] x) {
        MemorySegment s = arena.allocate(4L * x.length, 64);
        MemorySegment.copy(x, 0, s, ValueLayout.JAVA_FLOAT, 0, x.length);
        return s;
    }

    /**
     * The kernel's arithmetic in plain Java: block b of a group adds (exact integer sum w xq) x (d dx) to lane
     * (b % G) / 2 (an int lane holds blocks 2i and 2i + 1, the even one first), blocks in order, d widened by
     * {@link Float#float16ToFloat}; the lanes summed as the kernel sums them ({@link JavaKernels#sum}). Also the
     * arithmetic of the layout with f32 scales before docs/performance-java.md section 48: equal bits, equal results.
     */
    private static float scalarReference(MemorySegment w, int row, int cols, MemorySegment q8) {
        float[] lanes = new float[LANES];
        long at = row * WeightType.Q8_0.rowBytes(cols);
        for (int b = 0; b < cols / 32; b++) {
            long blk = at + 34L * b;
            float d = Float.float16ToFloat(w.get(Quant.U16_LE, blk));
            float dx = Float.float16ToFloat(q8.get(Quant.U16_LE, 34L * b));
            int dot = 0;
            for (int l = 0; l < 32; l++) {
                dot += w.get(ValueLayout.JAVA_BYTE, blk + 2 + l) * q8.get(ValueLayout.JAVA_BYTE, 34L * b + 2 + l);
            }
            int lane = (b % G) / 2;
            lanes[lane] = Math.fma((float) dot, d * dx, lanes[lane]);
        }
        return JavaKernels.sum(lanes, 0);
    }

    /**
     * Decode over slices of every length 1-13 and longer ones (every remainder of the four-row passes, and slices of
     * one to three whole passes, whose rotated streams wrap), at starts 0, 1 and 2, for rows of one block up to 11008 inputs with a padded last group, and 1-3 tokens (one decode per token).
     * Each row of the slice gets its own product and every row outside it stays unwritten (NaN).
     */
    @Test
    void decodeMatchesItsReferencesInEveryLoopShape() {
        assumeTrue(PackedQ8.PACKS, "the backend packs Q8_0 at 8 float lanes only");
        SplittableRandom rnd = new SplittableRandom(44);
        for (int[] c : new int[][]{{1, 32, 40}, {2, 32 * G + 96, 40}, {1, 2048, 13}, {3, 11008, 9}, {1, 64 * G, 22}}) {
            int tokens = c[0], cols = c[1], rows = c[2];
            MemorySegment w = randomMatrix(rows, cols, rnd);
            float[] wHat = new float[rows * cols];
            for (int r = 0; r < rows; r++) Quant.dequantizeRow(WeightType.Q8_0, w, r * WeightType.Q8_0.rowBytes(cols), cols, wHat, r * cols);
            float[] x = activations(tokens, cols, rnd);
            float[] xHat = new float[x.length];
            long q8Row = WeightType.Q8_0.rowBytes(cols);
            MemorySegment q8 = arena.allocate(q8Row * tokens);
            for (int t = 0; t < tokens; t++) {
                Quant.quantizeQ8_0(x, t * cols, cols, q8, t * q8Row);
                Quant.dequantizeRow(WeightType.Q8_0, q8, t * q8Row, cols, xHat, t * cols);
            }
            PackedQ8 p = PackedQ8.pack(w, rows, cols, pool);
            assertEquals((long) rows * ((cols / 32 + G - 1) / G) * G * 34, p.byteSize()); // the file's bytes per block
            MemorySegment out = arena.allocate(4L * rows, 64);
            for (int t = 0; t < tokens; t++) {
                MemorySegment xt = segment(java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols));
                for (int start : new int[]{0, 1, 2}) {
                    for (int length = 1; start + length <= rows; length += length < 13 ? 1 : 9) {
                        out.fill((byte) 0xFF); // NaN
                        p.matvec(xt, out, start, start + length);
                        for (int r = 0; r < rows; r++) {
                            float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, r);
                            String where = tokens + "x" + cols + "x" + rows + " slice " + start + ".." + (start + length)
                                    + " t=" + t + " r=" + r;
                            if (r < start || r >= start + length) {
                                assertTrue(Float.isNaN(got), where + " is outside the slice but was written: " + got);
                                continue;
                            }
                            float ref = scalarReference(w, r, cols, q8.asSlice(t * q8Row));
                            assertEquals(Float.floatToRawIntBits(ref), Float.floatToRawIntBits(got), where + " vs the scalar reference: " + got + " instead of " + ref);
                            double want = 0, size = 0;
                            for (int i = 0; i < cols; i++) {
                                double term = (double) wHat[r * cols + i] * xHat[t * cols + i];
                                want += term;
                                size += Math.abs(term);
                            }
                            // QuantTest's bound for the native backend, whose activations these are
                            assertEquals(want, got, 4e-6 * Math.sqrt(cols) * size + 1e-6, where + " vs dequantized");
                        }
                    }
                }
            }
        }
    }

    /**
     * Through the backend: at 8 lanes it packs Q8_0 and its decode is the packed one (the tokens of a product below
     * the GEMM's minimum one by one); the GEMM widens the file's bytes, so it gives the unpacked GEMM's bits. At 16
     * lanes Q8_0 stays in the file's layout.
     */
    @Test
    void theBackendPacksQ8_0AtEightLanesAndItsGemmKeepsTheFilesBits() {
        SplittableRandom rnd = new SplittableRandom(45);
        int rows = 21, cols = 2304, tokens = 5;
        MemorySegment w = randomMatrix(rows, cols, rnd);
        MemorySegment x = segment(activations(tokens, cols, rnd));
        try (JavaKernels k = new JavaKernels()) {
            PackedMatrix packed = k.pack(WeightType.Q8_0, w, rows, cols, pool);
            if (!PackedQ8.PACKS) {
                assertNull(packed);
                return;
            }
            PackedQ8 p = assertInstanceOf(PackedQ8.class, packed);
            assertEquals(WeightType.Q8_0, p.sourceType());
            assertEquals(rows, p.rows());
            assertEquals(cols, p.cols());
            MemorySegment got = arena.allocate(4L * tokens * rows, 64), want = arena.allocate(4L * tokens * rows, 64);
            k.matmul(p, x, got, tokens, rows, 0, rows);
            k.matmul(WeightType.Q8_0, w, x, want, tokens, cols, rows, 0, rows);
            for (int i = 0; i < tokens * rows; i++) {
                assertEquals(Float.floatToRawIntBits(want.getAtIndex(ValueLayout.JAVA_FLOAT, i)),
                        Float.floatToRawIntBits(got.getAtIndex(ValueLayout.JAVA_FLOAT, i)), "GEMM output " + i);
            }
            MemorySegment one = arena.allocate(4L * 2 * rows, 64), direct = arena.allocate(4L * rows, 64);
            k.matmul(p, x, one, 2, rows, 0, rows); // two tokens: two decodes
            for (int t = 0; t < 2; t++) {
                p.matvec(x.asSlice(4L * t * cols), direct, 0, rows);
                for (int r = 0; r < rows; r++) {
                    assertEquals(Float.floatToRawIntBits(direct.getAtIndex(ValueLayout.JAVA_FLOAT, r)),
                            Float.floatToRawIntBits(one.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r)), "token " + t + " row " + r);
                }
            }
        }
    }

    /**
     * The scales are widened in the kernel by {@link PackedNibbles#f16Scaled}'s bit trick: every finite f16 (subnormals,
     * both zeros and the largest included) as a block's d gives the scalar reference's bits (d by Float.float16ToFloat).
     */
    @Test
    void everyFiniteF16ScaleIsWidenedExactly() {
        assumeTrue(PackedQ8.PACKS, "the backend packs Q8_0 at 8 float lanes only");
        short[] finite = new short[65536 - 2 * 1024]; // all but the infinities and NaNs (exponent all ones)
        int n = 0;
        for (int h = 0; h < 65536; h++) if ((h & 0x7C00) != 0x7C00) finite[n++] = (short) h;
        assertEquals(finite.length, n);
        int rows = 31, cols = 2048 * 32; // 31 x 2048 = 63488 blocks: each finite f16 once
        MemorySegment w = randomMatrix(rows, cols, new SplittableRandom(46));
        for (int i = 0; i < finite.length; i++) w.set(Quant.U16_LE, 34L * i, finite[i]);
        float[] x = activations(1, cols, new SplittableRandom(47));
        MemorySegment q8 = arena.allocate(WeightType.Q8_0.rowBytes(cols));
        Quant.quantizeQ8_0(x, 0, cols, q8, 0);
        PackedQ8 p = PackedQ8.pack(w, rows, cols, pool);
        MemorySegment out = arena.allocate(4L * rows, 64);
        p.matvec(segment(x), out, 0, rows);
        for (int r = 0; r < rows; r++) {
            float want = scalarReference(w, r, cols, q8), got = out.getAtIndex(ValueLayout.JAVA_FLOAT, r);
            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got), "row " + r + ": " + got + " instead of " + want);
        }
    }

    /** Infinite and NaN scales, which the widening's bit trick does not hold for, are refused at pack time. */
    @Test
    void scalesThatAreNotFiniteAreRefusedAtPackTime() {
        for (short bad : new short[]{(short) 0x7C00, (short) 0xFC00, (short) 0x7C01, (short) 0xFE00, (short) 0xFFFF}) {
            MemorySegment w = randomMatrix(3, 64, new SplittableRandom(48));
            w.set(Quant.U16_LE, 34L * 5, bad); // row 2, block 1
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PackedQ8.pack(w, 3, 64, pool));
            assertTrue(e.getMessage().contains("block 1 of row 2") && e.getMessage().contains("not finite"), e.getMessage());
        }
    }

    @Test
    void badShapesAreRefusedWithTheReason() {
        MemorySegment w = arena.allocate(34 * 8, 64);
        IllegalArgumentException partial = assertThrows(IllegalArgumentException.class, () -> PackedQ8.pack(w, 4, 40, pool));
        assertTrue(partial.getMessage().contains("40"), partial.getMessage());
        IllegalArgumentException tooSmall = assertThrows(IllegalArgumentException.class, () -> PackedQ8.pack(w, 8, 64, pool));
        assertTrue(tooSmall.getMessage().contains("needs 544 bytes, got 272"), tooSmall.getMessage());
    }
}
