package aya.kernels;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Q8_0 / Q4_0: block bytes and dequantized values against GGUF's reference quantizers (the gguf package's numpy port,
 * fixture made by src/test/python/make_quant_fixtures.py), and the quantized matmul of every backend / ISA against a
 * double-precision reference: the dequantized weights times the activations as the backend sees them (native: per
 * token quantized to Q8_0, as llama.cpp does; java: f32), summed exactly.
 */
class QuantTest {

    private static Arena arena;

    @BeforeAll
    static void open() {
        arena = Arena.ofShared();
    }

    @AfterAll
    static void close() {
        arena.close();
        if (NativeKernels.isaAvailable("auto")) {
            NativeKernels.load("auto");
        }
    }

    static float[] fromBits(JsonNode bits) {
        float[] v = new float[bits.size()];
        for (int i = 0; i < v.length; i++) v[i] = Float.intBitsToFloat((int) bits.get(i).asLong());
        return v;
    }

    @Test
    void blocksMatchGgufReference() throws IOException {
        JsonNode root = new ObjectMapper().readTree(Path.of("src/test/resources/quant/blocks.json").toFile());
        int checked = 0;
        for (JsonNode row : root.get("rows")) {
            float[] x = fromBits(row.get("input_bits"));
            for (WeightType type : new WeightType[]{WeightType.Q8_0, WeightType.Q4_0}) {
                JsonNode want = row.get(type.tag.toLowerCase());
                MemorySegment q = arena.allocate(type.rowBytes(x.length));
                Quant.quantizeRow(type, x, 0, x.length, q, 0);
                assertEquals(want.get("hex").asText(), HexFormat.of().formatHex(q.toArray(ValueLayout.JAVA_BYTE)),
                        type + " bytes of row " + checked);
                float[] back = new float[x.length];
                Quant.dequantizeRow(type, q, 0, x.length, back, 0);
                assertArrayEquals(fromBits(want.get("dequantized_bits")), back, 0f, type + " values of row " + checked);
            }
            checked++;
        }
        assertTrue(checked >= 9);
    }

    @Test
    void q4NibbleLayoutByHand() {
        // 32 weights -8..7 twice over with max magnitude -8 first: d = -8 / -8 = 1, nibble = trunc(x + 8.5) clamped to 15
        float[] x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = (j % 16) - 8;
        MemorySegment q = arena.allocate(18);
        Quant.quantizeRow(WeightType.Q4_0, x, 0, 32, q, 0);
        assertEquals(Float.floatToFloat16(1f), q.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));
        for (int j = 0; j < 16; j++) {
            int byteJ = q.get(ValueLayout.JAVA_BYTE, 2 + j) & 0xFF;
            assertEquals(j, byteJ & 0x0F, "low nibble holds element " + j);
            assertEquals(j, byteJ >>> 4, "high nibble holds element " + (j + 16));
        }
    }

    @Test
    void roundfRoundsHalvesAwayFromZero() {
        assertEquals(3, Quant.roundf(2.5f));
        assertEquals(-3, Quant.roundf(-2.5f));
        assertEquals(0, Quant.roundf(0.49999997f));
        assertEquals(-1, Quant.roundf(-0.5f));
    }

    @Test
    void rowsMustBeWholeBlocks() {
        assertThrows(IllegalArgumentException.class,
                () -> Quant.quantizeRow(WeightType.Q8_0, new float[40], 0, 40, arena.allocate(100), 0));
    }

    // ---- matmul ----

    static Stream<Arguments> backendsAndTypes() {
        return KernelsParityTest.backends().flatMap(b -> Stream.of(WeightType.Q8_0, WeightType.Q4_0).map(t -> Arguments.of(b, t)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndTypes")
    void matmulMatchesQuantizedReference(String backend, WeightType type) {
        SplittableRandom rnd = new SplittableRandom(type.ordinal() * 31L + backend.length());
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            // tokens 1..7, rows not a multiple of the 4-row kernel, one block (32), an odd block count, a long row,
            // and a prefill whose rows span several k blocks of the GEMM with a short last one (2080 = 8 x 256 + 32)
            for (int[] shape : new int[][]{{1, 32, 5}, {1, 2048, 37}, {3, 96, 19}, {5, 160, 33}, {1, 1024, 64},
                    {1, 32, 1}, {2, 64, 6}, {4, 96, 7}, {6, 224, 18}, {7, 32, 9}, {1, 11008, 6}, {5, 2080, 9}}) {
                int tokens = shape[0], inDim = shape[1], rows = shape[2];
                float[] w = new float[rows * inDim];
                for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian() * (i % 97 == 0 ? 0.5f : 0.05f);
                float[] x = new float[tokens * inDim];
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1);
                x[0] = 0; // and a block of exact zeros in the activations
                for (int i = 0; i < Math.min(32, inDim); i++) x[x.length - 1 - i] = 0;

                long rowBytes = type.rowBytes(inDim);
                MemorySegment wq = arena.allocate(rows * rowBytes, 64);
                for (int r = 0; r < rows; r++) Quant.quantizeRow(type, w, r * inDim, inDim, wq, r * rowBytes);
                float[] wHat = new float[w.length];
                for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, wq, r * rowBytes, inDim, wHat, r * inDim);
                // activations as the kernels see them: native quantizes them to Q8_0 per token (the same numerics as
                // GGUF's, checked above) for integer dot products; java multiplies the dequantized weights with f32 x
                float[] xHat = x.clone();
                if (!backend.equals("java")) {
                    MemorySegment xq = arena.allocate(WeightType.Q8_0.rowBytes(inDim));
                    for (int t = 0; t < tokens; t++) {
                        Quant.quantizeRow(WeightType.Q8_0, x, t * inDim, inDim, xq, 0);
                        Quant.dequantizeRow(WeightType.Q8_0, xq, 0, inDim, xHat, t * inDim);
                    }
                }

                int outStride = rows + 3;
                MemorySegment out = arena.allocate(4L * tokens * outStride, 64);
                MemorySegment xs = arena.allocate(4L * x.length, 64);
                MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, x.length);
                int split = rows / 3; // uneven slices, as the pool hands them out
                k.matmul(type, wq, xs, out, tokens, inDim, outStride, 0, split);
                k.matmul(type, wq, xs, out, tokens, inDim, outStride, split, rows);
                for (int t = 0; t < tokens; t++) {
                    for (int r = 0; r < rows; r++) {
                        double want = 0, size = 0, exact = 0;
                        for (int i = 0; i < inDim; i++) {
                            want += (double) wHat[r * inDim + i] * xHat[t * inDim + i];
                            size += Math.abs((double) wHat[r * inDim + i] * xHat[t * inDim + i]);
                            exact += (double) w[r * inDim + i] * x[t * inDim + i];
                        }
                        float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * outStride + r);
                        String where = backend + " " + type + " " + tokens + "x" + inDim + "x" + rows + " t=" + t + " r=" + r;
                        assertEquals(want, got, 4e-6 * Math.sqrt(inDim) * size + 1e-6, where);
                        // and the whole quantization error stays small next to the magnitude of the sum
                        // loose: rows with outliers quantize coarsely (skipped for single-block rows, where one outlier
                        // decides the whole Q4_0 scale and the error is not a fraction of the sum any more)
                        double bound = (type == WeightType.Q8_0 ? 0.03 : 0.35) * size + 1e-6;
                        if (inDim > 32 || type == WeightType.Q8_0) assertEquals(exact, got, bound, where + " vs unquantized");
                    }
                }
            }
        }
    }

    /**
     * The decode kernels take rows that are a quarter or half of the slice apart in one pass: every row of a slice
     * (of every length up to a few passes, with every leftover) gets its own row's product, and no row outside it is
     * written.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndTypes")
    void decodeWritesEachRowOfItsSliceOnly(String backend, WeightType type) {
        // 64 inputs and 4128 (129 blocks): with 8 float lanes the java Q8_0 decode takes two rows per pass up to
        // 4096 inputs and four beyond, so both of its kernels see every slice
        for (int inDim : new int[]{64, 4128}) {
            decodeWritesEachRowOfItsSliceOnly(backend, type, inDim);
        }
    }

    private void decodeWritesEachRowOfItsSliceOnly(String backend, WeightType type, int inDim) {
        SplittableRandom rnd = new SplittableRandom(11);
        int rows = 48;
        float[] w = new float[rows * inDim];
        for (int r = 0; r < rows; r++) { // rows of clearly different sizes, so a row swapped for another shows
            for (int i = 0; i < inDim; i++) w[r * inDim + i] = (r + 1) * (0.5f + (float) rnd.nextDouble());
        }
        float[] x = new float[inDim];
        for (int i = 0; i < inDim; i++) x[i] = (float) rnd.nextDouble();
        long rowBytes = type.rowBytes(inDim);
        MemorySegment wq = arena.allocate(rows * rowBytes, 64);
        for (int r = 0; r < rows; r++) Quant.quantizeRow(type, w, r * inDim, inDim, wq, r * rowBytes);
        float[] wHat = new float[w.length];
        for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, wq, r * rowBytes, inDim, wHat, r * inDim);
        MemorySegment xs = arena.allocate(4L * inDim, 64);
        MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, inDim);
        MemorySegment out = arena.allocate(4L * rows, 64);
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            for (int[] slice : new int[][]{{0, 1}, {5, 7}, {3, 6}, {10, 14}, {1, 6}, {7, 14}, {9, 18}, {2, 13}, {0, 48}, {5, 46}}) {
                out.fill((byte) 0xFF); // NaN
                k.matmul(type, wq, xs, out, 1, inDim, rows, slice[0], slice[1]);
                for (int r = 0; r < rows; r++) {
                    float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, r);
                    String where = backend + " " + type + " " + inDim + " inputs, slice " + slice[0] + ".." + slice[1] + " r=" + r;
                    if (r < slice[0] || r >= slice[1]) {
                        assertTrue(Float.isNaN(got), where + " is outside the slice but was written: " + got);
                        continue;
                    }
                    double want = 0, size = 0;
                    for (int i = 0; i < inDim; i++) {
                        want += (double) wHat[r * inDim + i] * x[i];
                        size += Math.abs((double) wHat[r * inDim + i] * x[i]);
                    }
                    // native rounds x to Q8_0 first (about 1/254 of each block's largest |x|); java keeps f32
                    assertEquals(want, got, (backend.equals("java") ? 1e-5 : 1e-2) * size, where);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndTypes")
    void embedDequantizesOneRow(String backend, WeightType type) {
        SplittableRandom rnd = new SplittableRandom(7);
        int rows = 5, dim = 96;
        float[] w = new float[rows * dim];
        for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
        long rowBytes = type.rowBytes(dim);
        MemorySegment wq = arena.allocate(rows * rowBytes);
        for (int r = 0; r < rows; r++) Quant.quantizeRow(type, w, r * dim, dim, wq, r * rowBytes);
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            MemorySegment out = arena.allocate(4L * dim);
            k.embed(type, wq, 3, dim, out);
            float[] want = new float[dim];
            Quant.dequantizeRow(type, wq, 3 * rowBytes, dim, want, 0);
            assertArrayEquals(want, out.toArray(ValueLayout.JAVA_FLOAT), 0f);
        }
    }
}
