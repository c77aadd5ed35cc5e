package aya.kernels;

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
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Q5_0 / Q4_K / Q6_K on every backend and ISA, against references made outside this project
 * (src/test/resources/quant/kquant.bin, from src/test/python/make_kquant_fixtures.py): rows quantized by llama.cpp and
 * crafted edge blocks, their values dequantized by gguf-py, and llama.cpp's own dot products with f32 activations.
 * Then random matrices (several rows and tokens, row slices) against a double-precision product of the dequantized
 * weights and the Q8_K / Q8_0 activations.
 */
class KQuantTest {

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

    /** One fixture row: its blocks, gguf-py's values, tokens of activations and llama.cpp's dots. */
    record FixtureRow(WeightType type, int n, MemorySegment blocks, float[] values, float[] x, float[] dots) {
    }

    static List<FixtureRow> fixture() throws IOException {
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(Path.of("src/test/resources/quant/kquant.bin")))
                .order(ByteOrder.LITTLE_ENDIAN);
        List<FixtureRow> rows = new ArrayList<>();
        while (in.hasRemaining()) {
            WeightType type = WeightType.fromGgml(in.getInt());
            int n = in.getInt(), tokens = in.getInt();
            byte[] blocks = new byte[(int) type.rowBytes(n)];
            in.get(blocks);
            MemorySegment segment = arena.allocate(blocks.length, 64);
            MemorySegment.copy(blocks, 0, segment, ValueLayout.JAVA_BYTE, 0, blocks.length);
            float[] values = new float[n], x = new float[tokens * n], dots = new float[tokens];
            in.asFloatBuffer().get(values);
            in.position(in.position() + 4 * n);
            in.asFloatBuffer().get(x);
            in.position(in.position() + 4 * x.length);
            in.asFloatBuffer().get(dots);
            in.position(in.position() + 4 * dots.length);
            rows.add(new FixtureRow(type, n, segment, values, x, dots));
        }
        return rows;
    }

    @Test
    void fixtureCoversEveryType() throws IOException {
        List<FixtureRow> rows = fixture();
        for (WeightType type : new WeightType[]{WeightType.Q5_0, WeightType.Q4_K, WeightType.Q6_K}) {
            assertTrue(rows.stream().filter(r -> r.type() == type).count() >= 5, type + " rows in the fixture");
        }
    }

    @Test
    void dequantizeMatchesGgufPy() throws IOException {
        for (FixtureRow row : fixture()) {
            float[] got = new float[row.n()];
            Quant.dequantizeRow(row.type(), row.blocks(), 0, row.n(), got, 0);
            assertArrayEquals(row.values(), got, 0f, row.type() + " n=" + row.n());
        }
    }

    @Test
    void rowsMustBeWholeBlocks() {
        MemorySegment w = arena.allocate(1024);
        assertThrows(IllegalArgumentException.class, () -> Quant.dequantizeRow(WeightType.Q4_K, w, 0, 128, new float[128], 0));
        try (Kernels k = new JavaKernels()) {
            MemorySegment x = arena.allocate(4 * 128), out = arena.allocate(4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> k.matmul(WeightType.Q6_K, w, x, out, 1, 128, 1, 0, 1));
            assertTrue(e.getMessage().contains("multiple of 256"), e.getMessage());
        }
    }

    static Stream<String> backends() {
        return KernelsParityTest.backends();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void embedMatchesGgufPy(String backend) throws IOException {
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            for (FixtureRow row : fixture()) {
                MemorySegment out = arena.allocate(4L * row.n(), 64);
                k.embed(row.type(), row.blocks(), 0, row.n(), out);
                assertArrayEquals(row.values(), out.toArray(ValueLayout.JAVA_FLOAT), 0f, backend + " " + row.type());
            }
        }
    }

    /**
     * Each backend against llama.cpp's vec_dot: the same activation quantization and integers, so only the order of
     * the f32 sums differs; and against the exact f32 product, within the activation rounding bound (every |x - d q|
     * is at most its block's max|x| / 254).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matmulMatchesLlamaCpp(String backend) throws IOException {
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            for (FixtureRow row : fixture()) {
                int tokens = row.dots().length, n = row.n();
                MemorySegment x = arena.allocate(4L * row.x().length, 64), out = arena.allocate(4L * tokens, 64);
                MemorySegment.copy(row.x(), 0, x, ValueLayout.JAVA_FLOAT, 0, row.x().length);
                k.matmul(row.type(), row.blocks(), x, out, tokens, n, 1, 0, 1);
                int actBlock = row.type() == WeightType.Q5_0 ? 32 : 256;
                for (int t = 0; t < tokens; t++) {
                    double exact = 0, size = 0, bound = 0;
                    for (int i = 0; i < n; i++) {
                        float xi = row.x()[t * n + i];
                        exact += (double) row.values()[i] * xi;
                        size += Math.abs((double) row.values()[i] * xi);
                        float amax = 0;
                        for (int j = i / actBlock * actBlock; j < (i / actBlock + 1) * actBlock; j++) {
                            amax = Math.max(amax, Math.abs(row.x()[t * n + j]));
                        }
                        bound += Math.abs((double) row.values()[i]) * amax / 254;
                    }
                    float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, t);
                    String where = backend + " " + row.type() + " n=" + n + " t=" + t;
                    assertEquals(row.dots()[t], got, 3e-6 * (size + 254 * bound) + 1e-30, where + " vs llama.cpp");
                    assertEquals(exact, got, 1.001 * bound + 1e-5 * size, where + " vs exact f32");
                }
            }
        }
    }

    static Stream<Arguments> backendsAndTypes() {
        return backends().flatMap(b -> Stream.of(WeightType.Q5_0, WeightType.Q4_K, WeightType.Q6_K).map(t -> Arguments.of(b, t)));
    }

    /** Random bytes (any block a file holds) with sane f16 scales, either sign, at every scale field. */
    static MemorySegment randomMatrix(WeightType type, int rows, int n, SplittableRandom rnd) {
        long bytes = rows * type.rowBytes(n);
        MemorySegment w = arena.allocate(bytes, 64);
        for (long i = 0; i < bytes; i++) w.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
        for (long b = 0; b < bytes / type.blockBytes; b++) {
            long at = b * type.blockBytes;
            int[] scaleFields = type == WeightType.Q4_K ? new int[]{0, 2} : type == WeightType.Q6_K ? new int[]{208} : new int[]{0};
            for (int field : scaleFields) {
                short d = (short) (0x1c00 | (rnd.nextInt() & 0x83ff));
                w.set(Quant.U16_LE, at + field, d);
            }
        }
        return w;
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndTypes")
    void matmulMatchesQuantizedReference(String backend, WeightType type) {
        SplittableRandom rnd = new SplittableRandom(type.ordinal() * 17L + backend.length());
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            // decode and prefill with every remainder of a 4-token group, rows in uneven slices, long rows
            for (int[] shape : new int[][]{{1, 256, 7}, {1, 2048, 33}, {2, 512, 5}, {3, 768, 9}, {4, 256, 12},
                    {5, 1024, 6}, {9, 512, 11}, {1, 11008, 3}}) {
                int tokens = shape[0], inDim = shape[1], rows = shape[2];
                MemorySegment w = randomMatrix(type, rows, inDim, rnd);
                float[] wHat = new float[rows * inDim];
                long rowBytes = type.rowBytes(inDim);
                for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, w, r * rowBytes, inDim, wHat, r * inDim);
                float[] x = new float[tokens * inDim];
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1);
                MemorySegment xs = arena.allocate(4L * x.length, 64);
                MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, x.length);
                float[] xHat = quantizedActivations(type, xs, tokens, inDim);

                int outStride = rows + 3;
                MemorySegment out = arena.allocate(4L * tokens * outStride, 64);
                int split = rows / 3;
                k.matmul(type, w, xs, out, tokens, inDim, outStride, 0, split);
                k.matmul(type, w, xs, out, tokens, inDim, outStride, split, rows);
                for (int t = 0; t < tokens; t++) {
                    for (int r = 0; r < outStride; r++) {
                        float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * outStride + r);
                        String where = backend + " " + type + " " + tokens + "x" + inDim + "x" + rows + " t=" + t + " r=" + r;
                        if (r >= rows) {
                            assertEquals(0f, got, where + ": written outside the rows");
                            continue;
                        }
                        assertRowProduct(wHat, xHat, r, t, inDim, got, where);
                    }
                }
            }
        }
    }

    /**
     * The Q6_K decode (1-3 tokens) reads two rows per pass, half the slice apart, and pairs an odd slice's last row
     * with itself: slices of every length 1-13 and some longer, at starts on and off a multiple of four, must give
     * each row of the slice its own row's product and leave every other row unwritten (NaN).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void q6kDecodeWritesEachRowOfItsSliceOnly(String backend) {
        SplittableRandom rnd = new SplittableRandom(29);
        int rows = 40, inDim = 512;
        MemorySegment w = randomMatrix(WeightType.Q6_K, rows, inDim, rnd);
        float[] wHat = new float[rows * inDim];
        long rowBytes = WeightType.Q6_K.rowBytes(inDim);
        for (int r = 0; r < rows; r++) Quant.dequantizeRow(WeightType.Q6_K, w, r * rowBytes, inDim, wHat, r * inDim);
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            for (int tokens = 1; tokens <= 3; tokens++) {
                float[] x = new float[tokens * inDim];
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
                MemorySegment xs = arena.allocate(4L * x.length, 64);
                MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, x.length);
                float[] xHat = quantizedActivations(WeightType.Q6_K, xs, tokens, inDim);
                MemorySegment out = arena.allocate(4L * tokens * rows, 64);
                for (int start : new int[]{0, 3, 4}) {
                    for (int length = 1; start + length <= rows; length += length < 13 ? 1 : 9) {
                        out.fill((byte) 0xFF); // NaN
                        k.matmul(WeightType.Q6_K, w, xs, out, tokens, inDim, rows, start, start + length);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < rows; r++) {
                                float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r);
                                String where = backend + " tokens=" + tokens + " slice " + start + ".." + (start + length) + " t=" + t + " r=" + r;
                                if (r < start || r >= start + length) {
                                    assertTrue(Float.isNaN(got), where + " is outside the slice but was written: " + got);
                                    continue;
                                }
                                assertRowProduct(wHat, xHat, r, t, inDim, got, where);
                            }
                        }
                    }
                }
            }
        }
    }

    /** got = row r of wHat . token t of xHat (both dequantized, inDim wide), within 1e-5 of the sum of |products|. */
    private static void assertRowProduct(float[] wHat, float[] xHat, int r, int t, int inDim, float got, String where) {
        double want = 0, size = 0;
        for (int i = 0; i < inDim; i++) {
            want += (double) wHat[r * inDim + i] * xHat[t * inDim + i];
            size += Math.abs((double) wHat[r * inDim + i] * xHat[t * inDim + i]);
        }
        assertEquals(want, got, 1e-5 * size + 1e-30, where);
    }

    /** The activations as the kernels see them: Q8_0 (Q5_0) or Q8_K (Q4_K, Q6_K) per token, dequantized. */
    static float[] quantizedActivations(WeightType type, MemorySegment x, int tokens, int inDim) {
        int block = type == WeightType.Q5_0 ? 32 : 256;
        short[] q = new short[tokens * inDim];
        float[] d = new float[tokens * inDim / block];
        if (type == WeightType.Q5_0) {
            for (int t = 0; t < tokens; t++) KQuant.quantizeQ8_0(x, (long) t * inDim, inDim, q, t * inDim, d, t * inDim / 32);
        } else {
            int[] sums = new int[tokens * inDim / 16];
            for (int t = 0; t < tokens; t++) {
                KQuant.quantizeQ8_K(x, (long) t * inDim, inDim, q, t * inDim, d, t * inDim / 256, sums, t * inDim / 16);
            }
        }
        float[] xHat = new float[q.length];
        for (int i = 0; i < q.length; i++) xHat[i] = q[i] * d[i / block];
        return xHat;
    }
}
