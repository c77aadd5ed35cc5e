package aya.kernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java backend's packed Q6_K (int8 values, int8 group scales, f32 d): it holds exactly the weights
 * {@link Quant#dequantizeRow} gives (gguf-py's values, checked by KQuantTest), so decode matches a double-precision
 * product of those weights within f32 summing, prefill gives bit for bit the unpacked GEMM's result (the same GEMM
 * over the same widened values), and every row of a slice is computed alone, whatever the slice. Also run by the
 * pom's avx2 execution (8 float lanes).
 */
class PackedQ6KTest {

    private static Arena arena;
    private static JavaKernels kernels;
    private static Parallel pool;

    @BeforeAll
    static void open() {
        arena = Arena.ofShared();
        kernels = new JavaKernels();
        pool = new Parallel(2);
    }

    @AfterAll
    static void close() {
        kernels.close();
        pool.close();
        arena.close();
    }

    /** Random blocks (every 6-bit value and int8 scale a file may hold) with f16 d of either sign, 2^-8 to 2^-1. */
    static MemorySegment randomQ6K(int rows, int cols, SplittableRandom rnd) {
        long bytes = rows * WeightType.Q6_K.rowBytes(cols);
        MemorySegment w = arena.allocate(bytes, 64);
        for (long i = 0; i < bytes; i++) w.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
        for (long at = 0; at < bytes; at += WeightType.Q6_K.blockBytes) {
            w.set(Quant.U16_LE, at + 208, (short) (0x1c00 | (rnd.nextInt() & 0x83ff)));
        }
        return w;
    }

    static float[] dequantized(MemorySegment w, int rows, int cols) {
        float[] values = new float[rows * cols];
        for (int r = 0; r < rows; r++) Quant.dequantizeRow(WeightType.Q6_K, w, r * WeightType.Q6_K.rowBytes(cols), cols, values, r * cols);
        return values;
    }

    static MemorySegment randomActivations(int n, SplittableRandom rnd) {
        MemorySegment x = arena.allocate(4L * n, 64);
        for (int i = 0; i < n; i++) x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1));
        return x;
    }

    static MemorySegment nans(long floats) {
        MemorySegment out = arena.allocate(4 * floats, 64);
        for (long i = 0; i < floats; i++) out.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.NaN);
        return out;
    }

    @Test
    void packedRowsWidenToTheDequantizedWeightsBitForBit() {
        SplittableRandom rnd = new SplittableRandom(1);
        // 2500 rows: three pieces of the packing (1024 rows each) over two threads
        for (int[] shape : new int[][]{{2500, 256}, {7, 2304}}) {
            int rows = shape[0], cols = shape[1];
            MemorySegment w = randomQ6K(rows, cols, rnd);
            PackedQ6K p = (PackedQ6K) kernels.pack(WeightType.Q6_K, w, rows, cols, pool);
            assertEquals(rows * (cols / 256L) * 276, p.byteSize(), "256 int8 values, 16 int8 scales, f32 d per block");
            assertEquals(WeightType.Q6_K, p.sourceType());
            float[] expected = dequantized(w, rows, cols);
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                p.widen(r, 0, cols, row, 0);
                assertArrayEquals(Arrays.copyOfRange(expected, r * cols, (r + 1) * cols), row, "row " + r);
            }
            if (cols > 256) { // a k block from the middle of a row, into the middle of dst
                float[] part = new float[1024];
                p.widen(rows - 1, 256, 512, part, 256);
                assertArrayEquals(Arrays.copyOfRange(expected, (rows - 1) * cols + 256, (rows - 1) * cols + 768), Arrays.copyOfRange(part, 256, 768));
                assertEquals(0f, part[255]);
                assertEquals(0f, part[768]);
            }
        }
    }

    @Test
    void decodeMatchesTheDequantizedProductInEverySlice() {
        SplittableRandom rnd = new SplittableRandom(2);
        for (int cols : new int[]{256, 2048, 2304}) {
            int rows = 23;
            MemorySegment w = randomQ6K(rows, cols, rnd);
            PackedMatrix p = kernels.pack(WeightType.Q6_K, w, rows, cols, pool);
            float[] wHat = dequantized(w, rows, cols);
            for (int tokens = 1; tokens <= 3; tokens++) {
                MemorySegment x = randomActivations(tokens * cols, rnd);
                double[] exact = new double[tokens * rows], size = new double[tokens * rows];
                for (int t = 0; t < tokens; t++) {
                    for (int r = 0; r < rows; r++) {
                        for (int i = 0; i < cols; i++) {
                            double prod = (double) wHat[r * cols + i] * x.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * cols + i);
                            exact[t * rows + r] += prod;
                            size[t * rows + r] += Math.abs(prod);
                        }
                    }
                }
                // slices of every length mod 4 (the four-row passes and 0-3 rows left over) at starts 0-3: a row paired
                // with the wrong partners, or written outside its slice, fails
                int outStride = rows + 2;
                for (int start = 0; start < 4; start++) {
                    for (int end = start + 1; end <= rows; end += 1 + (end - start) / 4) {
                        MemorySegment out = nans((long) tokens * outStride);
                        kernels.matmul(p, x, out, tokens, outStride, start, end);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < outStride; r++) {
                                float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * outStride + r);
                                String where = cols + " cols, token " + t + ", row " + r + " of [" + start + ", " + end + ")";
                                if (r < start || r >= end) {
                                    assertTrue(Float.isNaN(got), where + ": written outside the slice");
                                } else {
                                    double e = exact[t * rows + r];
                                    assertTrue(Math.abs(got - e) <= KQuantTest.javaBound(cols, size[t * rows + r]), where + ": " + got + " vs " + e);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void decodeAgreesWithTheUnpackedJavaKernel() {
        SplittableRandom rnd = new SplittableRandom(3);
        int rows = 41, cols = 2048;
        MemorySegment w = randomQ6K(rows, cols, rnd);
        PackedMatrix p = kernels.pack(WeightType.Q6_K, w, rows, cols, pool);
        MemorySegment x = randomActivations(cols, rnd);
        MemorySegment packed = nans(rows), unpacked = nans(rows);
        kernels.matmul(p, x, packed, 1, rows, 0, rows);
        kernels.matmul(WeightType.Q6_K, w, x, unpacked, 1, cols, rows, 0, rows);
        float[] wHat = dequantized(w, rows, cols);
        for (int r = 0; r < rows; r++) {
            double size = 0;
            for (int i = 0; i < cols; i++) size += Math.abs((double) wHat[r * cols + i] * x.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            float a = packed.getAtIndex(ValueLayout.JAVA_FLOAT, r), b = unpacked.getAtIndex(ValueLayout.JAVA_FLOAT, r);
            assertTrue(Math.abs(a - b) <= 2 * KQuantTest.javaBound(cols, size), "row " + r + ": packed " + a + ", unpacked " + b);
        }
    }

    @Test
    void prefillIsTheUnpackedGemmBitForBit() {
        SplittableRandom rnd = new SplittableRandom(4);
        // GEMM_MIN_TOKENS = 4 and up: 5, 33 (a full token tile and a one-vector tile); 2304 inputs: a KR = 2048 panel,
        // then one of 256; 101 rows: a full MC = 96 block and a short one, slices with odd starts
        for (int[] shape : new int[][]{{4, 256, 7}, {5, 2304, 101}, {33, 512, 13}}) {
            int tokens = shape[0], cols = shape[1], rows = shape[2];
            MemorySegment w = randomQ6K(rows, cols, rnd);
            PackedMatrix p = kernels.pack(WeightType.Q6_K, w, rows, cols, pool);
            MemorySegment x = randomActivations(tokens * cols, rnd);
            for (int[] slice : new int[][]{{0, rows}, {3, rows - 1}}) {
                MemorySegment packed = nans((long) tokens * rows), unpacked = nans((long) tokens * rows);
                kernels.matmul(p, x, packed, tokens, rows, slice[0], slice[1]);
                kernels.matmul(WeightType.Q6_K, w, x, unpacked, tokens, cols, rows, slice[0], slice[1]);
                float[] a = packed.toArray(ValueLayout.JAVA_FLOAT), b = unpacked.toArray(ValueLayout.JAVA_FLOAT);
                assertArrayEquals(b, a, tokens + " tokens, " + rows + "x" + cols + ", rows " + Arrays.toString(slice));
            }
        }
    }

    @Test
    void refusesRowsThatAreNotWholeBlocksAndMatricesShorterThanTheirShape() {
        MemorySegment w = randomQ6K(2, 256, new SplittableRandom(5));
        assertThrows(IllegalArgumentException.class, () -> kernels.pack(WeightType.Q6_K, w, 1, 100, pool));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> kernels.pack(WeightType.Q6_K, w, 3, 256, pool));
        assertTrue(e.getMessage().contains("3x256"), e.getMessage());
    }
}
