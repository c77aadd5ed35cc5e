package aya.kernels;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The 16-bit integer GEMM of the 4-bit formats ({@link NibbleGemm}), called directly (so it is tested at 16 lanes and,
 * in the pom's avx2 execution, at 8, although the backend uses it only at 16): x quantized as the decode and native's
 * Q8_0 activations ({@link Quant#quantizeQ8_0}) value for value; each output bit for bit equal to a scalar reference
 * of the same arithmetic written from the file's bytes, and within QuantTest's bound of the double product of the
 * dequantized weights and dequantized x.
 */
class NibbleGemmTest {

    private static final int TT = NibbleGemm.TT, BLOCK = Quant.BLOCK;
    private static Arena arena;
    private static Parallel pool;

    @BeforeAll
    static void open() {
        arena = Arena.ofShared();
        pool = new Parallel(2);
    }

    @AfterAll
    static void close() {
        pool.close();
        arena.close();
    }

    /** Gaussian x with outliers, an all-zero block, and a block whose values land on halves once scaled (ties). */
    private static float[] activations(int tokens, int cols, SplittableRandom rnd) {
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian() * (i % 61 == 0 ? 8 : 1);
        for (int i = 0; i < BLOCK; i++) x[i] = 0;
        if (cols >= 64) {
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

    /** Quant.quantizeQ8_0's numbers of x [tokens, cols]: the f16 scale per block and xq per value. */
    private static float[] q8Scales;
    private static int[] q8Values;

    private static void q8(float[] x, int tokens, int cols) {
        long rowBytes = WeightType.Q8_0.rowBytes(cols);
        MemorySegment q = arena.allocate(rowBytes * tokens);
        q8Scales = new float[tokens * cols / BLOCK];
        q8Values = new int[tokens * cols];
        for (int t = 0; t < tokens; t++) {
            Quant.quantizeQ8_0(x, t * cols, cols, q, t * rowBytes);
            for (int b = 0; b < cols / BLOCK; b++) {
                long at = t * rowBytes + b * WeightType.Q8_0.blockBytes;
                q8Scales[t * cols / BLOCK + b] = Float.float16ToFloat(q.get(Quant.U16_LE, at));
                for (int i = 0; i < BLOCK; i++) q8Values[t * cols + b * BLOCK + i] = q.get(ValueLayout.JAVA_BYTE, at + 2 + i);
            }
        }
    }

    /** Nibble q (0..15) of weight i of row r, s and (o + 8 s) of its block, from the file's bytes. */
    private static int nibble(WeightType type, MemorySegment w, int cols, int r, int i) {
        long row = r * type.rowBytes(cols);
        if (type == WeightType.Q4_0) {
            int b = i / BLOCK, k = i % BLOCK;
            int v = w.get(ValueLayout.JAVA_BYTE, row + b * type.blockBytes + 2 + k % 16) & 0xFF;
            return k < 16 ? v & 15 : v >> 4;
        }
        int sb = i / 256, j = i % 256 / BLOCK, k = i % BLOCK; // sub-block j: bytes 32 (j / 2), low nibble for even j
        int v = w.get(ValueLayout.JAVA_BYTE, row + sb * type.blockBytes + 16 + 32 * (j / 2) + k) & 0xFF;
        return j % 2 == 0 ? v & 15 : v >> 4;
    }

    private static float[] blockScaleAndOffset(WeightType type, MemorySegment w, int cols, int r, int b) {
        long row = r * type.rowBytes(cols);
        if (type == WeightType.Q4_0) {
            return new float[]{Float.float16ToFloat(w.get(Quant.U16_LE, row + b * type.blockBytes)), 0f};
        }
        long at = row + (long) (b / 8) * type.blockBytes;
        float d = Float.float16ToFloat(w.get(Quant.U16_LE, at)), dmin = Float.float16ToFloat(w.get(Quant.U16_LE, at + 2));
        float s = d * KQuant.q4kScale(w, at, b % 8), o = -(dmin * KQuant.q4kMin(w, at, b % 8));
        return new float[]{s, o + s * 8f};
    }

    /**
     * The kernel's arithmetic for row r and token t, in its order: acc = fma(S_b, s_b dx_b, acc) block by block
     * (S_b = sum (q - 8) xq, an exact integer); for Q4_K, per panel of NibbleGemm.KR columns, acc += (the f32 sum over
     * the panel's blocks of fma((o + 8 s)_b, dx_b sum xq_b)).
     */
    private static float reference(WeightType type, MemorySegment w, int cols, int r, int t) {
        float acc = 0;
        for (int k1 = 0; k1 < cols; k1 += NibbleGemm.KR) {
            float offsets = 0;
            for (int b = k1 / BLOCK; b < Math.min(cols, k1 + NibbleGemm.KR) / BLOCK; b++) {
                int sum = 0, sumXq = 0;
                for (int k = 0; k < BLOCK; k++) {
                    int xq = q8Values[t * cols + b * BLOCK + k];
                    sum += (nibble(type, w, cols, r, b * BLOCK + k) - 8) * xq;
                    sumXq += xq;
                }
                float dx = q8Scales[t * cols / BLOCK + b];
                float[] so = blockScaleAndOffset(type, w, cols, r, b);
                acc = Math.fma((float) sum, so[0] * dx, acc);
                offsets = Math.fma(so[1], dx * sumXq, offsets);
            }
            if (type == WeightType.Q4_K) acc += offsets;
        }
        return acc;
    }

    /**
     * x quantized per call (a Scratch's tiles) and for a share (all tiles of x, made tile range by tile range as the
     * pool's items make them): the same numbers, each the decode's.
     */
    @Test
    void xIsQuantizedAsTheDecodeInPairs() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (int[] c : new int[][]{{1, 64}, {TT + 3, 2048}, {2 * TT, 11008}, {2 * TT + 5, 96}}) {
            int tokens = c[0], cols = c[1], tiles = (tokens + TT - 1) / TT;
            float[] x = activations(tokens, cols, rnd);
            q8(x, tokens, cols);
            NibbleGemm.Scratch scratch = new NibbleGemm.Scratch();
            scratch.grow(cols);
            NibbleGemm.Quantized own = scratch.q, shared = new NibbleGemm.Quantized();
            shared.grow(tiles, cols);
            own.xq[tiles * TT * cols / 2 - 1] = 12345; // stale values in the last tile's padding must be cleared
            shared.xq[shared.xq.length - 1] = 12345;
            shared.dx[shared.dx.length - 1] = 1f;
            if (tokens <= NibbleGemm.NC) NibbleGemm.quantize(segment(x), 0, tokens, cols, scratch.row, own, 0);
            MemorySegment xs = segment(x);
            NibbleGemm.quantizeTiles(xs, tokens, cols, shared, 0, 1);
            NibbleGemm.quantizeTiles(xs, tokens, cols, shared, 1, tiles);
            for (NibbleGemm.Quantized s : tokens <= NibbleGemm.NC ? List.of(own, shared) : List.of(shared)) {
                check(s, tokens, cols);
            }
        }
    }

    /** q holds x [tokens, cols] quantized as the decode, in tiles (q8's numbers), the last tile's padding zero. */
    private static void check(NibbleGemm.Quantized s, int tokens, int cols) {
        int blocks = cols / BLOCK;
        for (int t = 0; t < (tokens + TT - 1) / TT * TT; t++) {
            int u = t / TT, lane = t % TT;
            for (int b = 0; b < blocks; b++) {
                float dx = t < tokens ? q8Scales[t * blocks + b] : 0f;
                int sum = 0;
                for (int l = 0; l < 16; l++) {
                    int lo = t < tokens ? q8Values[t * cols + b * BLOCK + l] : 0;
                    int hi = t < tokens ? q8Values[t * cols + b * BLOCK + l + 16] : 0;
                    sum += lo + hi;
                    int pair = s.xq[(u * cols / 2 + b * 16 + l) * TT + lane];
                    assertEquals(lo, (short) pair, "t=" + t + " b=" + b + " l=" + l + " low");
                    assertEquals(hi, pair >> 16, "t=" + t + " b=" + b + " l=" + l + " high");
                }
                assertEquals(dx, s.dx[(u * blocks + b) * TT + lane], "dx t=" + t + " b=" + b);
                assertEquals(dx * sum, s.dxSum[(u * blocks + b) * TT + lane], "dx sum t=" + t + " b=" + b);
            }
        }
    }

    /**
     * Rows off every tile and row block size (3, 70, 130), tokens off every tile and past a pass of NC (1, 17, 33,
     * 261), columns of one block, two KC blocks with a short one, two KR panels; the rows in two uneven slices.
     */
    @Test
    void productsMatchTheScalarReferenceAndTheDoubleProduct() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (Object[] c : new Object[][]{{WeightType.Q4_0, 3, 32, 17}, {WeightType.Q4_0, 70, 2304, 33},
                {WeightType.Q4_0, 130, 288, 261}, {WeightType.Q4_0, 5, 96, 1}, {WeightType.Q4_K, 3, 256, 17},
                {WeightType.Q4_K, 70, 2304, 33}, {WeightType.Q4_K, 9, 768, 261}}) {
            WeightType type = (WeightType) c[0];
            int rows = (int) c[1], cols = (int) c[2], tokens = (int) c[3];
            MemorySegment w = PackedNibblesTest.randomMatrix(arena, type, rows, cols, rnd);
            float[] x = activations(tokens, cols, rnd);
            q8(x, tokens, cols);
            float[] wHat = new float[rows * cols];
            for (int r = 0; r < rows; r++) Quant.dequantizeRow(type, w, r * type.rowBytes(cols), cols, wHat, r * cols);
            PackedNibbles p = PackedNibbles.pack(type, w, rows, cols, pool);
            MemorySegment out = arena.allocate(4L * tokens * rows, 64);
            out.fill((byte) 0xFF); // NaN
            int cut = rows / 3 + 1;
            NibbleGemm.matmul(p, segment(x), out, tokens, rows, 1, cut, null);
            NibbleGemm.matmul(p, segment(x), out, tokens, rows, cut, rows, null);
            // the same calls reading x quantized once for both (a share): the same bits
            MemorySegment sharedOut = arena.allocate(4L * tokens * rows, 64);
            sharedOut.fill((byte) 0xFF);
            NibbleGemm.Quantized shared = new NibbleGemm.Quantized();
            int tiles = (tokens + TT - 1) / TT;
            shared.grow(tiles, cols);
            NibbleGemm.quantizeTiles(segment(x), tokens, cols, shared, 0, tiles);
            NibbleGemm.matmul(p, segment(x), sharedOut, tokens, rows, 1, cut, shared);
            NibbleGemm.matmul(p, segment(x), sharedOut, tokens, rows, cut, rows, shared);
            assertArrayEquals(out.toArray(ValueLayout.JAVA_FLOAT), sharedOut.toArray(ValueLayout.JAVA_FLOAT),
                    type + " " + rows + "x" + cols + " tokens " + tokens + ": x quantized once");
            for (int t = 0; t < tokens; t++) {
                for (int r = 0; r < rows; r++) {
                    float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r);
                    String where = type + " " + rows + "x" + cols + " t=" + t + "/" + tokens + " r=" + r;
                    if (r == 0) {
                        assertTrue(Float.isNaN(got), where + " is outside the slices but was written: " + got);
                        continue;
                    }
                    assertEquals(reference(type, w, cols, r, t), got, 0f, where + " vs the scalar reference");
                    double want = 0, size = 0;
                    for (int i = 0; i < cols; i++) {
                        double term = (double) wHat[r * cols + i] * q8Values[t * cols + i] * q8Scales[(t * cols + i) / BLOCK];
                        want += term;
                        size += Math.abs(term);
                    }
                    assertEquals(want, got, 4e-6 * Math.sqrt(cols) * size + 1e-6, where + " vs the double product");
                }
            }
        }
    }

    /** Extreme blocks: |sum (q - 8) xq| = 32 x 8 x 127 = 32512, the most the 16-bit halves must hold once folded. */
    @Test
    void extremeBlockSumsStayExact() {
        int rows = 2, cols = 64, tokens = 20;
        MemorySegment w = arena.allocate(rows * WeightType.Q4_0.rowBytes(cols), 64);
        for (int b = 0; b < rows * cols / BLOCK; b++) { // q = 0 everywhere (q - 8 = -8), d = 1
            w.set(Quant.U16_LE, b * 18L, Float.floatToFloat16(1f));
        }
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) x[i] = i / cols % 2 == 0 ? 1f : -1f; // xq = 127 or -127, dx = 1/127
        PackedNibbles p = PackedNibbles.pack(WeightType.Q4_0, w, rows, cols, pool);
        MemorySegment out = arena.allocate(4L * tokens * rows, 64);
        NibbleGemm.matmul(p, segment(x), out, tokens, rows, 0, rows, null);
        float dx = Float.float16ToFloat(Float.floatToFloat16(1f / 127));
        for (int t = 0; t < tokens; t++) {
            float block = (t % 2 == 0 ? -32512f : 32512f);
            float want = Math.fma(block, dx, Math.fma(block, dx, 0f));
            for (int r = 0; r < rows; r++) {
                assertEquals(want, out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) t * rows + r), 0f, "t=" + t + " r=" + r);
            }
        }
    }
}
