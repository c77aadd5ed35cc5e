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
import java.util.Arrays;
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
 * weights and the activations as each backend sees them: native quantizes them to Q8_K / Q8_0 per token (llama.cpp's
 * numerics, reproduced here by {@link #quantizeQ8_K} / {@link #quantizeQ8_0}); java keeps them f32.
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

    /** The prefill's panel widening gives gguf-py's values bit for bit, from the first block and from a later one. */
    @Test
    void widenMatchesGgufPy() throws IOException {
        for (FixtureRow row : fixture()) {
            WeightType type = row.type();
            float[] got = new float[row.n() + 5];
            KQuant.widen(type, row.blocks(), 0, row.n(), got, 5);
            assertArrayEquals(row.values(), Arrays.copyOfRange(got, 5, 5 + row.n()), 0f, type + " n=" + row.n());
            if (row.n() > type.blockSize) {
                int rest = row.n() - type.blockSize;
                float[] tail = new float[rest];
                KQuant.widen(type, row.blocks(), type.blockBytes, rest, tail, 0);
                assertArrayEquals(Arrays.copyOfRange(row.values(), type.blockSize, row.n()), tail, 0f, type + " from block 1");
            }
        }
    }

    /**
     * Q4_K's 6-bit scales and mins, read as three ints per block (KQuant.q4kScale / q4kMin), against the byte-wise
     * unpacking of ggml's get_scale_min_k4, for random 12-byte fields (every top-two-bits pattern occurs).
     */
    @Test
    void q4kScalesAndMinsMatchTheByteWiseUnpacking() {
        SplittableRandom rnd = new SplittableRandom(13);
        MemorySegment w = arena.allocate(16);
        int[] sc = new int[12];
        for (int n = 0; n < 20000; n++) {
            for (int i = 0; i < 12; i++) {
                sc[i] = rnd.nextInt(256);
                w.set(ValueLayout.JAVA_BYTE, 4 + i, (byte) sc[i]);
            }
            for (int j = 0; j < 8; j++) {
                int scale = j < 4 ? sc[j] & 63 : (sc[j + 4] & 0x0F) | ((sc[j - 4] >>> 6) << 4);
                int min = j < 4 ? sc[j + 4] & 63 : (sc[j + 4] >>> 4) | ((sc[j] >>> 6) << 4);
                assertEquals(scale, KQuant.q4kScale(w, 0, j), "scale " + j);
                assertEquals(min, KQuant.q4kMin(w, 0, j), "min " + j);
            }
        }
    }

    /**
     * The vector widening of Q4_K and Q6_K (their scales read a block at a time) against the plain loop of
     * dequantizeRow (Q6_K's int8 scales read byte by byte there), bit for bit, on random blocks: every scale byte,
     * negative Q6_K scales included.
     */
    @Test
    void widenEqualsThePlainDequantizationOnRandomBlocks() {
        SplittableRandom rnd = new SplittableRandom(17);
        for (WeightType type : new WeightType[]{WeightType.Q4_K, WeightType.Q6_K}) {
            int n = 8 * type.blockSize;
            MemorySegment w = arena.allocate(type.rowBytes(n));
            for (long i = 0; i < w.byteSize(); i++) w.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
            int[] scaleFields = type == WeightType.Q4_K ? new int[]{0, 2} : new int[]{208};
            for (long at = 0; at < w.byteSize(); at += type.blockBytes) {
                for (int field : scaleFields) {
                    w.set(Quant.U16_LE, at + field, Float.floatToFloat16((float) rnd.nextDouble(-1e-2, 1e-2)));
                }
            }
            float[] want = new float[n], got = new float[n];
            KQuant.dequantizeRow(type, w, 0, n, want, 0);
            KQuant.widen(type, w, 0, n, got, 0);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]), type + " weight " + i);
            }
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
     * Native against llama.cpp's vec_dot: the same activation quantization and integers, so only the order of the f32
     * sums differs. Java against the exact product of gguf-py's values with the f32 activations (f32 sums), and
     * llama.cpp's dot within the activation rounding bound of it (every |x - d q| is at most its block's max|x| / 254).
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
                    if (backend.equals("java")) {
                        assertEquals(exact, got, javaBound(n, size), where + " vs exact f32");
                        assertEquals(row.dots()[t], got, 1.001 * bound + 1e-5 * size, where + " vs llama.cpp (its x rounded to Q8_K / Q8_0)");
                    } else {
                        assertEquals(row.dots()[t], got, 3e-6 * (size + 254 * bound) + 1e-30, where + " vs llama.cpp");
                        assertEquals(exact, got, 1.001 * bound + 1e-5 * size, where + " vs exact f32");
                    }
                }
            }
        }
    }

    /** Java's f32 sums against an exact reference: the bound of QuantTest (f32 rounding grows about like sqrt(n)). */
    static double javaBound(int n, double size) {
        return 4e-6 * Math.sqrt(n) * size + 1e-30;
    }

    static Stream<Arguments> backendsAndTypes() {
        return backends().flatMap(b -> Stream.of(WeightType.Q5_0, WeightType.Q4_K, WeightType.Q6_K).map(t -> Arguments.of(b, t)));
    }

    /** Random bytes (any block a file holds) with sane f16 scales, either sign, at every scale field. */
    static MemorySegment randomMatrix(Arena arena, WeightType type, int rows, int n, SplittableRandom rnd) {
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
            // decode (1-3 tokens) and prefill (from GEMM_MIN_TOKENS = 4: 4, 5, 9, and 33 = a 32-token tile and a
            // one-vector tile), rows in uneven slices, long rows, and 2304 = 9 x 256 inputs: a GEMM panel of KR = 2048
            // columns, then one of 256
            for (int[] shape : new int[][]{{1, 256, 7}, {1, 2048, 33}, {2, 512, 5}, {3, 768, 9}, {4, 256, 12},
                    {5, 1024, 6}, {9, 512, 11}, {1, 11008, 3}, {4, 2304, 13}, {33, 512, 7}, {6, 11008, 5}}) {
                int tokens = shape[0], inDim = shape[1], rows = shape[2];
                MemorySegment w = randomMatrix(arena, type, rows, inDim, rnd);
                float[] wHat = new float[rows * inDim];
                long rowBytes = type.rowBytes(inDim);
                for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, w, r * rowBytes, inDim, wHat, r * inDim);
                float[] x = new float[tokens * inDim];
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1);
                MemorySegment xs = arena.allocate(4L * x.length, 64);
                MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, x.length);
                float[] xHat = activationsSeenBy(backend, type, xs, tokens, inDim);

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
                        assertRowProduct(backend, wHat, xHat, r, t, inDim, got, where);
                    }
                }
            }
        }
    }

    /**
     * The decode (1-3 tokens) reads several rows per pass (Q6_K two, half
     * apart, an odd slice's last row paired with itself; the rows left over one at a time): slices of every length
     * 1-13 and some longer, at starts on and off a multiple of four, must give each row of the slice its own row's
     * product and leave every other row unwritten (NaN).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndTypes")
    void decodeWritesEachRowOfItsSliceOnly(String backend, WeightType type) {
        SplittableRandom rnd = new SplittableRandom(29);
        int rows = 40, inDim = 512;
        MemorySegment w = randomMatrix(arena, type, rows, inDim, rnd);
        float[] wHat = new float[rows * inDim];
        long rowBytes = type.rowBytes(inDim);
        for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, w, r * rowBytes, inDim, wHat, r * inDim);
        try (Kernels k = KernelsParityTest.kernels(backend)) {
            for (int tokens = 1; tokens <= 3; tokens++) {
                float[] x = new float[tokens * inDim];
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
                MemorySegment xs = arena.allocate(4L * x.length, 64);
                MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 0, x.length);
                float[] xHat = activationsSeenBy(backend, type, xs, tokens, inDim);
                MemorySegment out = arena.allocate(4L * tokens * rows, 64);
                for (int start : new int[]{0, 3, 4}) {
                    for (int length = 1; start + length <= rows; length += length < 13 ? 1 : 9) {
                        out.fill((byte) 0xFF); // NaN
                        k.matmul(type, w, xs, out, tokens, inDim, rows, start, start + length);
                        for (int t = 0; t < tokens; t++) {
                            for (int r = 0; r < rows; r++) {
                                float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r);
                                String where = backend + " " + type + " tokens=" + tokens + " slice " + start + ".." + (start + length) + " t=" + t + " r=" + r;
                                if (r < start || r >= start + length) {
                                    assertTrue(Float.isNaN(got), where + " is outside the slice but was written: " + got);
                                    continue;
                                }
                                assertRowProduct(backend, wHat, xHat, r, t, inDim, got, where);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * got = row r of wHat . token t of xHat (both dequantized, inDim wide): native within 1e-5 of the sum of |products|
     * (exact integers per block, only the f32 sums over blocks round), java within {@link #javaBound}.
     */
    private static void assertRowProduct(String backend, float[] wHat, float[] xHat, int r, int t, int inDim, float got, String where) {
        double want = 0, size = 0;
        for (int i = 0; i < inDim; i++) {
            want += (double) wHat[r * inDim + i] * xHat[t * inDim + i];
            size += Math.abs((double) wHat[r * inDim + i] * xHat[t * inDim + i]);
        }
        assertEquals(want, got, backend.equals("java") ? javaBound(inDim, size) : 1e-5 * size + 1e-30, where);
    }

    /** The activations as the backend's kernels see them: java f32; native Q8_0 (Q5_0) or Q8_K (Q4_K, Q6_K) per token, dequantized. */
    static float[] activationsSeenBy(String backend, WeightType type, MemorySegment x, int tokens, int inDim) {
        if (backend.equals("java")) return x.asSlice(0, 4L * tokens * inDim).toArray(ValueLayout.JAVA_FLOAT);
        int block = type == WeightType.Q5_0 ? 32 : 256;
        short[] q = new short[tokens * inDim];
        float[] d = new float[tokens * inDim / block];
        if (type == WeightType.Q5_0) {
            for (int t = 0; t < tokens; t++) quantizeQ8_0(x, (long) t * inDim, inDim, q, t * inDim, d, t * inDim / 32);
        } else {
            for (int t = 0; t < tokens; t++) quantizeQ8_K(x, (long) t * inDim, inDim, q, t * inDim, d, t * inDim / 256);
        }
        float[] xHat = new float[q.length];
        for (int i = 0; i < q.length; i++) xHat[i] = q[i] * d[i / block];
        return xHat;
    }

    /**
     * llama.cpp's quantize_row_q8_0 (the native kernels' activations for Q5_0): per 32 values d = max|x| / 127 (stored
     * through fp16), q = roundf(x / d), widened to shorts in q[qOff...], scales in s[sOff...].
     */
    static void quantizeQ8_0(MemorySegment x, long xOff, int n, short[] q, int qOff, float[] s, int sOff) {
        int block = WeightType.Q8_0.blockSize;
        for (int b = 0; b < n / block; b++) {
            long base = xOff + (long) b * block;
            float amax = 0;
            for (int j = 0; j < block; j++) amax = Math.max(amax, Math.abs(x.getAtIndex(Quant.F32, base + j)));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            s[sOff + b] = Float.float16ToFloat(Quant.f16(d));
            for (int j = 0; j < block; j++) {
                q[qOff + b * block + j] = (short) Quant.roundf(x.getAtIndex(Quant.F32, base + j) * id);
            }
        }
    }

    /**
     * llama.cpp's quantize_row_q8_K_ref (the native kernels' activations for Q4_K / Q6_K): per 256 values d = max /
     * -127 (max: the value of largest magnitude, the first of equal ones), q = round-half-even(x * -127 / max) capped at
     * 127, widened to shorts in q[qOff...], scales in d[dOff...].
     */
    static void quantizeQ8_K(MemorySegment x, long xOff, int n, short[] q, int qOff, float[] d, int dOff) {
        for (int b = 0; b < n / 256; b++) {
            long base = xOff + (long) b * 256;
            int qb = qOff + b * 256;
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++) {
                float v = x.getAtIndex(Quant.F32, base + j);
                if (Math.abs(v) > amax) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            if (amax == 0) {
                d[dOff + b] = 0;
                for (int j = 0; j < 256; j++) q[qb + j] = 0;
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) {
                q[qb + j] = (short) Math.min(127, (int) Math.rint(iscale * x.getAtIndex(Quant.F32, base + j)));
            }
            d[dOff + b] = 1 / iscale;
        }
    }
}
