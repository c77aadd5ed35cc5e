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
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java backend's packed Q6_K (16-bit lanes, one block of 32 per lane: {@link PackedQ6K}'s 6-bit planes and
 * {@link PackedQ6KInt8}'s byte per weight, which the model takes at 8 float lanes) and the per-slot sums they take from
 * {@link NibbleActivations}: the activations are the native backend's Q8_0 ones ({@link Quant#quantizeQ8_0}); each
 * one-token product equals a scalar reference of its kernel's arithmetic (exact integer slot sums, the same f32
 * operations per lane) to the rounding of the final horizontal sum, and the double product of the dequantized weights
 * ({@link Quant#dequantizeRow}, gguf-py's values per KQuantTest) and those activations within QuantTest's native
 * bound; prefill (widened from the file) gives bit for bit the unpacked GEMM's result; every row of a slice is
 * computed alone, whatever the slice. Runs at 16 lanes (G = 32) and, in the pom's avx2 execution, at 8 (G = 16).
 */
class PackedQ6KTest {

    private static final int G = PackedNibbles.G, LANES = JavaKernels.F.length();
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

    /**
     * Two Q6_K rows at the 16-bit sums' extremes for {@link PackedQ6KInt8}: every value 0 (weight -32 d sc) with
     * scales -128 (row 0), or values 0 and 63 by super-block with scales 127 / -128 (row 1); against x's blocks of
     * all +-max (xq +-127) a slot's 8 products sum to +-32512 and a block's two scaled sub-blocks to 2 x 65024 x 128.
     */
    static MemorySegment extremeQ6K(int cols) {
        MemorySegment w = randomQ6K(2, cols, new SplittableRandom(7));
        long rowBytes = WeightType.Q6_K.rowBytes(cols);
        for (int row = 0; row < 2; row++) {
            for (long at = row * rowBytes; at < (row + 1) * rowBytes; at += WeightType.Q6_K.blockBytes) {
                byte v = row == 0 || (at / WeightType.Q6_K.blockBytes) % 2 == 0 ? 0 : (byte) 0xFF; // ql and qh bits
                for (int i = 0; i < 192; i++) w.set(ValueLayout.JAVA_BYTE, at + i, v);
                for (int i = 0; i < 16; i++) w.set(ValueLayout.JAVA_BYTE, at + 192 + i, row == 1 && v == 0 && i % 2 == 0 ? 127 : (byte) -128);
            }
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
        if (n >= 64) { // a zero block, and a block whose max is 127 with halves of either sign (roundf's ties)
            for (int i = 0; i < 32; i++) x.setAtIndex(ValueLayout.JAVA_FLOAT, i, 0);
            x.setAtIndex(ValueLayout.JAVA_FLOAT, 32, 127);
            for (int i = 33; i < 64; i++) x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (i % 2 == 0 ? 1 : -1) * (i - 32.5f));
        }
        return x;
    }

    static MemorySegment nans(long floats) {
        MemorySegment out = arena.allocate(4 * floats, 64);
        for (long i = 0; i < floats; i++) out.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.NaN);
        return out;
    }

    @Test
    void packedSizeAndWideningAreTheFilesValuesBitForBit() {
        SplittableRandom rnd = new SplittableRandom(1);
        // 2048 and 11008 inputs: whole groups and a padded last group (at G = 32)
        for (int[] shape : new int[][]{{37, 256}, {7, 2304}, {3, 11008}}) {
            int rows = shape[0], cols = shape[1];
            MemorySegment w = randomQ6K(rows, cols, rnd);
            PackedMatrix packed = kernels.pack(WeightType.Q6_K, w, rows, cols, pool);
            Class<? extends JavaPackedMatrix> layout = PackedQ6KInt8.PACKS ? PackedQ6KInt8.class : PackedQ6K.class; // 8 lanes: bytes
            JavaPackedMatrix p = assertInstanceOf(layout, packed);
            long blocks = (long) rows * ((cols / 32 + G - 1) / G) * G;
            assertEquals(blocks * (24 + 2) + blocks / 8 * 4, PackedQ6K.pack(w, rows, cols, pool).byteSize(),
                    "PackedQ6K: 12 shorts and 2 scales per 32, d per 256");
            assertEquals(blocks * (32 + 2) + blocks / 8 * 4, PackedQ6KInt8.pack(w, rows, cols, pool).byteSize(),
                    "PackedQ6KInt8: 32 bytes and 2 scales per 32, d per 256");
            assertEquals(WeightType.Q6_K, p.sourceType());
            assertEquals(rows, p.rows());
            assertEquals(cols, p.cols());
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
    void slotStartsAreMinus32TimesTheSlotsSumsOfTheNativeQ8_0Values() {
        SplittableRandom rnd = new SplittableRandom(6);
        for (int cols : new int[]{256, 32 * G + 96, 11008}) {
            MemorySegment x = randomActivations(cols, rnd);
            MemorySegment q8 = arena.allocate(WeightType.Q8_0.rowBytes(cols));
            Quant.quantizeQ8_0(x.toArray(ValueLayout.JAVA_FLOAT), 0, cols, q8, 0);
            NibbleActivations a = new NibbleActivations();
            a.quantize(x, cols);
            for (int b = 0; b < a.groups * G; b++) {
                for (int s = 0; s < 4; s++) {
                    int sum = 0;
                    for (int k = 0; b < cols / 32 && k < 8; k++) {
                        sum += q8.get(ValueLayout.JAVA_BYTE, 34L * b + 2 + k + NibbleActivations.SLOT_OFFSET[s]);
                    }
                    assertEquals(-32 * sum, a.minus32[(b / G * 4 + s) * G + b % G], "cols " + cols + " block " + b + " slot " + s);
                }
            }
        }
    }

    /**
     * The kernel's arithmetic in plain Java, lane by lane: per group, sub-block h of 16 and block (lane (block % G) %
     * LANES of the half (block % G) / LANES), the exact integer sum (q - 32) xq times the scale (an exact int), times
     * d dx (exact), in the kernel's order; each lane's two halves added in f32, the lanes summed in double.
     * Returns {sum, sum of |lane|} (the second bounds the rounding of the kernel's horizontal sum).
     */
    private static double[] scalarReference(MemorySegment w, int row, int cols, MemorySegment q8) {
        float[][] halves = new float[2][LANES];
        long at = row * WeightType.Q6_K.rowBytes(cols);
        for (int g = 0; g < (cols / 32 + G - 1) / G; g++) {
            for (int h = 0; h < 2; h++) {
                for (int b = g * G; b < Math.min(g * G + G, cols / 32); b++) {
                    long sb = at + 210L * (b / 8);
                    float d = Float.float16ToFloat(w.get(Quant.U16_LE, sb + 208));
                    float dx = Float.float16ToFloat(q8.get(Quant.U16_LE, 34L * b));
                    int dot = 0; // sub-block h: slots h (weights 16 h ..) and h + 2 (16 h + 8 ..)
                    for (int l = 16 * h; l < 16 * h + 16; l++) {
                        dot += (KQuant.q6kValue(w, sb, 32 * (b % 8) + l) - 32) * q8.get(ValueLayout.JAVA_BYTE, 34L * b + 2 + l);
                    }
                    int scale = w.get(ValueLayout.JAVA_BYTE, sb + 192 + 2 * (b % 8) + h);
                    float[] lanes = halves[(b % G) / LANES];
                    int lane = (b % G) % LANES;
                    lanes[lane] = Math.fma((float) (dot * scale), d * dx, lanes[lane]);
                }
            }
        }
        float[] lanes = new float[LANES];
        for (int i = 0; i < LANES; i++) lanes[i] = halves[0][i] + halves[1][i];
        return PackedNibblesTest.sumAndSize(lanes);
    }

    /**
     * {@link PackedQ6KInt8}'s arithmetic in plain Java: per group and block (int lane (block % G) / 2 of the even
     * blocks' vector or of the odd ones'), the exact integer sum (q - 32) xq of each sub-block times its scale, both
     * added (an exact int), times d dx (exact), into the lane: the group's even blocks, then its odd ones. Returns
     * {sum, sum of |lane|} as {@link #scalarReference}.
     */
    private static double[] scalarReferenceInt8(MemorySegment w, int row, int cols, MemorySegment q8) {
        float[] lanes = new float[LANES];
        long at = row * WeightType.Q6_K.rowBytes(cols);
        for (int g = 0; g < (cols / 32 + G - 1) / G; g++) {
            for (int odd = 0; odd < 2; odd++) {
                for (int b = g * G + odd; b < Math.min(g * G + G, cols / 32); b += 2) {
                    long sb = at + 210L * (b / 8);
                    float d = Float.float16ToFloat(w.get(Quant.U16_LE, sb + 208));
                    float dx = Float.float16ToFloat(q8.get(Quant.U16_LE, 34L * b));
                    int total = 0;
                    for (int h = 0; h < 2; h++) {
                        int dot = 0;
                        for (int l = 16 * h; l < 16 * h + 16; l++) {
                            dot += (KQuant.q6kValue(w, sb, 32 * (b % 8) + l) - 32) * q8.get(ValueLayout.JAVA_BYTE, 34L * b + 2 + l);
                        }
                        total += dot * w.get(ValueLayout.JAVA_BYTE, sb + 192 + 2 * (b % 8) + h);
                    }
                    int lane = (b % G) / 2;
                    lanes[lane] = Math.fma((float) total, d * dx, lanes[lane]);
                }
            }
        }
        return PackedNibblesTest.sumAndSize(lanes);
    }

    /**
     * Every loop shape of the decode (1-3 tokens) over slices of every length 1-13 and longer ones, at starts on and
     * off a multiple of four (every remainder of the four-row passes), for rows of one super-block up to 11008 inputs
     * with a padded last group, and slices within and across the layout's blocks of {@link PackedQ6K#ROWS} rows (a short
     * last one). Each row of the slice gets its own product and every row outside it stays NaN.
     */
    @Test
    void decodeMatchesItsReferencesInEverySlice() {
        SplittableRandom rnd = new SplittableRandom(2);
        // the layout's blocks of ROWS rows: two whole and a short one, slices from inside the first across them
        int blocks = 2 * PackedQ6K.ROWS + 11;
        // rows < 0: extremeQ6K's two rows against x of +-1 per block
        for (int[] c : new int[][]{{1, 256, 23}, {2, 2048, 23}, {3, 2304, 13}, {1, 32 * G + 256, 9}, {1, 11008, 9}, {2, 512, blocks},
                {1, 2048, -2}, {2, 32 * G + 256, -2}}) {
          for (int layout = 0; layout < 2; layout++) { // PackedQ6K, PackedQ6KInt8
            int tokens = c[0], cols = c[1], rows = Math.abs(c[2]);
            MemorySegment w = c[2] < 0 ? extremeQ6K(cols) : randomQ6K(rows, cols, rnd);
            PackedMatrix p = layout == 0 ? PackedQ6K.pack(w, rows, cols, pool) : PackedQ6KInt8.pack(w, rows, cols, pool);
            float[] wHat = dequantized(w, rows, cols);
            MemorySegment x = randomActivations(tokens * cols, rnd);
            if (c[2] < 0) { // blocks of all 1 or all -1: xq all +-127
                for (int i = 0; i < tokens * cols; i++) x.setAtIndex(ValueLayout.JAVA_FLOAT, i, i / 32 % 3 == 1 ? -1 : 1);
            }
            float[] xf = x.toArray(ValueLayout.JAVA_FLOAT), xHat = new float[xf.length]; // x as the decode sees it: Q8_0
            long q8Row = WeightType.Q8_0.rowBytes(cols);
            MemorySegment q8 = arena.allocate(q8Row * tokens);
            for (int t = 0; t < tokens; t++) {
                Quant.quantizeQ8_0(xf, t * cols, cols, q8, t * q8Row);
                Quant.dequantizeRow(WeightType.Q8_0, q8, t * q8Row, cols, xHat, t * cols);
            }
            for (int start : new int[]{0, 3, 4, PackedQ6K.ROWS - 2}) {
                for (int length = 1; start + length <= rows; length += length < 13 ? 1 : 9) {
                    MemorySegment out = nans((long) tokens * rows);
                    kernels.matmul(p, x, out, tokens, rows, start, start + length);
                    for (int t = 0; t < tokens; t++) {
                        for (int r = 0; r < rows; r++) {
                            float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r);
                            String where = "layout " + layout + ", " + tokens + "x" + cols + "x" + rows + " slice " + start + ".." + (start + length)
                                    + " t=" + t + " r=" + r;
                            if (r < start || r >= start + length) {
                                assertTrue(Float.isNaN(got), where + " is outside the slice but was written: " + got);
                                continue;
                            }
                            double want = 0, size = 0, exact = 0;
                            for (int i = 0; i < cols; i++) {
                                double term = (double) wHat[r * cols + i] * xHat[t * cols + i];
                                want += term;
                                size += Math.abs(term);
                                exact += (double) wHat[r * cols + i] * xf[t * cols + i];
                            }
                            double[] ref = layout == 0 ? scalarReference(w, r, cols, q8.asSlice(t * q8Row))
                                    : scalarReferenceInt8(w, r, cols, q8.asSlice(t * q8Row));
                            assertEquals(ref[0], got, 2e-6 * ref[1] + 1e-30, where + " vs the scalar reference");
                            // QuantTest's bound for the native backend, whose activations these are
                            assertEquals(want, got, 4e-6 * Math.sqrt(cols) * size + 1e-6, where + " vs dequantized");
                            // and the activations' rounding stays small next to the size of the sum
                            assertEquals(exact, got, 0.03 * size + 1e-6, where + " vs f32 activations");
                        }
                    }
                }
            }
          }
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
        IllegalArgumentException partial = assertThrows(IllegalArgumentException.class, () -> kernels.pack(WeightType.Q6_K, w, 1, 100, pool));
        assertTrue(partial.getMessage().contains("100"), partial.getMessage());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> kernels.pack(WeightType.Q6_K, w, 3, 256, pool));
        assertTrue(e.getMessage().contains("3x256"), e.getMessage());
    }
}
