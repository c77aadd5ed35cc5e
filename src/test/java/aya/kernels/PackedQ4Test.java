package aya.kernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java backend's packed Q4_K layout ({@link PackedQ4}) against the file's layout: the packed weights are the
 * file's dequantized values bit for bit ({@link Quant#dequantizeRow}, itself tested against gguf-py in KQuantTest and
 * QuantTest), and products through the packed copy (decode and GEMM) match a double-precision product of those values
 * and the f32 activations within {@link KQuantTest#javaBound}, as do the unpacked Java kernels'. Runs at 16 lanes and,
 * in the pom's avx2 execution, at 8 (one vector step per half block, or two).
 */
class PackedQ4Test {

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

    /** Random Q4_K blocks: f16 d and dmin of either sign, every 6-bit scale and min, every nibble. */
    private static MemorySegment randomMatrix(WeightType type, int rows, int cols, SplittableRandom rnd) {
        long bytes = rows * type.rowBytes(cols);
        MemorySegment w = arena.allocate(bytes, 64);
        for (long i = 0; i < bytes; i++) w.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
        for (long at = 0; at < bytes; at += type.blockBytes) {
            w.set(Quant.U16_LE, at, (short) (0x1c00 | (rnd.nextInt() & 0x83ff)));
            w.set(Quant.U16_LE, at + 2, (short) (0x1c00 | (rnd.nextInt() & 0x83ff)));
        }
        return w;
    }

    private static float[] dequantized(WeightType type, MemorySegment w, int rows, int cols) {
        float[] values = new float[rows * cols];
        for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, w, r * type.rowBytes(cols), cols, values, r * cols);
        return values;
    }

    private static MemorySegment activations(int tokens, int cols, SplittableRandom rnd) {
        MemorySegment x = arena.allocate(4L * tokens * cols, 64);
        for (int i = 0; i < tokens * cols; i++) {
            x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1));
        }
        return x;
    }

    @Test
    void packedWeightsAreTheFilesDequantizedValuesBitForBit() {
        WeightType type = WeightType.Q4_K;
        SplittableRandom rnd = new SplittableRandom(5);
        int rows = 7, cols = 768;
        MemorySegment w = randomMatrix(type, rows, cols, rnd);
        float[] want = dequantized(type, w, rows, cols);
        try (JavaKernels k = new JavaKernels()) {
            PackedQ4 p = assertInstanceOf(PackedQ4.class, k.pack(type, w, rows, cols, pool));
            assertEquals(type, p.sourceType());
            assertEquals(rows, p.rows());
            assertEquals(cols, p.cols());
            assertEquals((long) rows * cols / 32 * 24, p.byteSize());
            for (int r = 0; r < rows; r++) {
                // from the row's start and from a later block (the GEMM widens k blocks of 256 from any of them)
                for (int k0 : new int[]{0, 256, 512}) {
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

    /**
     * Every loop shape of the packed product: decode (1-3 tokens) over slices of every length 1-13 and longer ones, at
     * starts on and off a multiple of four (every remainder of the four-row passes), and the GEMM (4, 5 and 33 tokens,
     * 2304 inputs = a KR panel of 2048 and one of 256); each row of the slice gets its own product, within the bound of
     * the unpacked Java kernel, and every row outside the slice stays unwritten (NaN).
     */
    @Test
    void packedProductsMatchTheDequantizedProductInEveryLoopShape() {
        WeightType type = WeightType.Q4_K;
        SplittableRandom rnd = new SplittableRandom(31);
        try (JavaKernels k = new JavaKernels()) {
            for (int[] shape : new int[][]{{1, 512, 40}, {2, 256, 40}, {3, 768, 40}, {4, 2304, 13}, {5, 512, 9}, {33, 256, 7}}) {
                int tokens = shape[0], cols = shape[1], rows = shape[2];
                MemorySegment w = randomMatrix(type, rows, cols, rnd);
                float[] wHat = dequantized(type, w, rows, cols);
                MemorySegment x = activations(tokens, cols, rnd);
                PackedMatrix p = k.pack(type, w, rows, cols, pool);
                MemorySegment out = arena.allocate(4L * tokens * rows, 64), unpacked = arena.allocate(4L * tokens * rows, 64);
                for (int start : new int[]{0, 3, 4}) {
                    for (int length = 1; start + length <= rows; length += length < 13 ? 1 : 9) {
                        out.fill((byte) 0xFF); // NaN
                        k.matmul(p, x, out, tokens, rows, start, start + length);
                        k.matmul(type, w, x, unpacked, tokens, cols, rows, start, start + length);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < rows; r++) {
                                float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r);
                                String where = type + " " + tokens + "x" + cols + "x" + rows + " slice " + start + ".."
                                        + (start + length) + " t=" + t + " r=" + r;
                                if (r < start || r >= start + length) {
                                    assertTrue(Float.isNaN(got), where + " is outside the slice but was written: " + got);
                                    continue;
                                }
                                double want = 0, size = 0;
                                for (int i = 0; i < cols; i++) {
                                    double term = (double) wHat[r * cols + i] * x.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * cols + i);
                                    want += term;
                                    size += Math.abs(term);
                                }
                                double bound = KQuantTest.javaBound(cols, size);
                                assertEquals(want, got, bound, where + " (packed)");
                                assertEquals(want, unpacked.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r), bound,
                                        where + " (the file's layout)");
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void otherTypesAreReadInTheFilesLayout() {
        try (JavaKernels k = new JavaKernels()) {
            // Q4_0 in the packed layout measured slower than its file-layout decode (docs/performance-java.md 12)
            for (WeightType type : new WeightType[]{WeightType.Q4_0, WeightType.Q8_0, WeightType.BF16, WeightType.F32}) {
                MemorySegment w = arena.allocate(4L * 256 * 4, 64);
                assertNull(k.pack(type, w, 4, 256, pool), type + " is not packed");
            }
            // Q6_K has its own int8 layout (PackedQ6KTest)
            assertFalse(k.pack(WeightType.Q6_K, arena.allocate(210L * 4, 64), 4, 256, pool) instanceof PackedQ4);
        }
    }

    @Test
    void badShapesAreRefusedWithTheReason() {
        try (JavaKernels k = new JavaKernels()) {
            MemorySegment w = arena.allocate(144 * 4, 64);
            IllegalArgumentException partial = assertThrows(IllegalArgumentException.class,
                    () -> k.pack(WeightType.Q4_K, w, 4, 200, pool));
            assertTrue(partial.getMessage().contains("200"), partial.getMessage());
            IllegalArgumentException tooSmall = assertThrows(IllegalArgumentException.class,
                    () -> k.pack(WeightType.Q4_K, w, 8, 256, pool));
            assertTrue(tooSmall.getMessage().contains("needs 1152 bytes, got 576"), tooSmall.getMessage());
        }
    }
}
