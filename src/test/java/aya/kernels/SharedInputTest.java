package aya.kernels;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * {@link Kernels#shareInput}: a job's products with x prepared once give the same bits as products that each read x
 * themselves (the Java GEMM transposing it per call), whatever the thread count and the cut of the rows into pieces,
 * for tokens around the tile (TW), the one-vector tail and the pass (NC), inDim around the k block (KC), in the file's
 * layout, a packed matrix (at 512 bits Q4_0 takes the 16-bit GEMM, which reads x quantized) and with bf16 activations,
 * with the job's matrices told to the share or not; and once the share is closed, x may change again.
 */
class SharedInputTest {

    static Stream<String> backends() {
        return Backends.available().stream();
    }

    /** The product a job runs: which matmul, and the bf16 flag its share needs. */
    enum Product { FILE_BF16, FILE_F32, FILE_Q8_0, PACKED_Q4_0, BF16_ACTIVATIONS }

    @ParameterizedTest
    @MethodSource("backends")
    void sharedInputGivesTheBitsOfEachCallsOwn(String backend) {
        int half = JavaKernels.TW / 2;
        // from GEMM_MIN_TOKENS: below it the products are matrix-vector, whose lane sums C2 and the interpreter may
        // order differently, so two calls need not agree to the bit (and there is nothing to share)
        int[] tokenCounts = {JavaKernels.GEMM_MIN_TOKENS, JavaKernels.TW + 1, 2 * JavaKernels.TW + half - 3,
                JavaKernels.NC + half + 1};
        SplittableRandom rnd = new SplittableRandom(3);
        try (Kernels k = Backend.open(backend); Arena arena = Arena.ofShared()) {
            for (int threads : new int[] {1, 3}) { // 3: more threads than this machine's cores
                try (Parallel pool = new Parallel(threads)) {
                    for (Product product : Product.values()) {
                        boolean quantized = product == Product.FILE_Q8_0 || product == Product.PACKED_Q4_0;
                        // whole 32-blocks for the quantized types, odd widths (vector tails) for the others
                        int[] inDims = quantized ? new int[] {JavaKernels.KC - 32, JavaKernels.KC + 32}
                                : new int[] {JavaKernels.KC - 1, JavaKernels.KC + 1};
                        for (int inDim : inDims) {
                            for (int tokens : tokenCounts) {
                                check(k, pool, arena, rnd, product, 2 * JavaKernels.RB + 5, inDim, tokens);
                            }
                        }
                    }
                }
            }
        }
    }

    private static void check(Kernels k, Parallel pool, Arena arena, SplittableRandom rnd, Product product,
                              int rows, int inDim, int tokens) {
        WeightType type = switch (product) {
            case FILE_BF16, BF16_ACTIVATIONS -> WeightType.BF16;
            case FILE_F32 -> WeightType.F32;
            case FILE_Q8_0 -> WeightType.Q8_0;
            case PACKED_Q4_0 -> WeightType.Q4_0;
        };
        MemorySegment w = weights(arena, rnd, type, rows, inDim);
        PackedMatrix packed = product == Product.PACKED_Q4_0 ? k.pack(type, w, rows, inDim, pool) : null;
        MemorySegment x = arena.allocate((long) tokens * inDim * 4, 64);
        fill(x, rnd, tokens * inDim);
        boolean bf16 = product == Product.BF16_ACTIVATIONS;
        int stride = rows + 1;
        Matmul run = (from, to, out) -> {
            if (bf16) k.matmulBf16Activations(w, x, out, tokens, inDim, stride, from, to);
            else if (packed != null) k.matmul(packed, x, out, tokens, stride, from, to);
            else k.matmul(type, w, x, out, tokens, inDim, stride, from, to);
        };
        String what = product + " threads " + pool.threads() + " inDim " + inDim + " tokens " + tokens;
        // the job's matrix as the share is told (packed or in the file's layout), also next to one of the other kind
        // (both preparations made) and not at all (none made: the calls read x themselves)
        PackedMatrix[][] readerSets = packed != null ? new PackedMatrix[][] {{packed}, {null, packed}, {}}
                : new PackedMatrix[][] {{null}, {}};
        for (int round = 0; round < 2; round++) { // the second round after x changed: the first share is over
            for (int piece : new int[] {1, rows / 2 + 1}) {
                // the same job with each call reading x itself (a decode step's sums may depend on the cut)
                float[] want = products(arena, tokens * stride,
                        out -> pool.forPieces(rows, piece, (worker, from, to) -> run.rows(from, to, out)));
                for (PackedMatrix[] readers : readerSets) {
                    float[] got = products(arena, tokens * stride, out -> {
                        try (Kernels.SharedInput h = k.shareInput(x, tokens, inDim, bf16, pool, readers)) {
                            pool.forPieces(rows, piece, (worker, from, to) -> run.rows(from, to, out));
                        }
                    });
                    assertArrayEquals(want, got, what + " pieces of " + piece + " round " + round + " readers "
                            + java.util.Arrays.toString(readers));
                }
            }
            // a share for the other product (x not rounded / rounded): the calls must not take its tiles
            float[] want = products(arena, tokens * stride, out -> run.rows(0, rows, out));
            float[] other = products(arena, tokens * stride, out -> {
                try (Kernels.SharedInput h = k.shareInput(x, tokens, inDim, !bf16, pool, packed)) {
                    pool.forPieces(rows, rows, (worker, from, to) -> run.rows(from, to, out));
                }
            });
            assertArrayEquals(want, other, what + " with the other rounding shared, round " + round);
            fill(x, rnd, tokens * inDim);
        }
    }

    /**
     * Two users of one backend (two sessions of one model): while one thread's calls run, another thread's shares
     * begin and end again and again. A call must neither fail on a share ending under it nor take its tiles: the same
     * bits as alone (found by ConcurrentSessionsTest: a share's x was cleared while another thread looked it up).
     */
    @ParameterizedTest
    @MethodSource("backends")
    void sharesOfAnotherThreadComingAndGoingDoNotDisturbACall(String backend) throws Exception {
        int rows = 2 * JavaKernels.RB + 5, inDim = JavaKernels.KC + 1, tokens = JavaKernels.GEMM_MIN_TOKENS;
        SplittableRandom rnd = new SplittableRandom(5);
        try (Kernels k = Backend.open(backend); Arena arena = Arena.ofShared(); Parallel pool = new Parallel(1)) {
            MemorySegment w = weights(arena, rnd, WeightType.BF16, rows, inDim);
            MemorySegment mine = arena.allocate((long) tokens * inDim * 4, 64), theirs = arena.allocate((long) tokens * inDim * 4, 64);
            fill(mine, rnd, tokens * inDim);
            fill(theirs, rnd, tokens * inDim);
            float[] want = products(arena, tokens * rows, out -> k.matmul(WeightType.BF16, w, mine, out, tokens, inDim, rows, 0, rows));
            java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
            Thread other = new Thread(() -> {
                while (!done.get()) {
                    try (Kernels.SharedInput h = k.shareInput(theirs, tokens, inDim, false, pool, (PackedMatrix) null)) {
                        Thread.onSpinWait();
                    }
                }
            });
            other.start();
            try {
                MemorySegment out = arena.allocate((long) tokens * rows * 4, 64);
                long end = System.nanoTime() + 500_000_000L;
                for (int i = 0; i < 200 || System.nanoTime() < end; i++) {
                    k.matmul(WeightType.BF16, w, mine, out, tokens, inDim, rows, 0, rows);
                    assertArrayEquals(want, out.toArray(ValueLayout.JAVA_FLOAT), "call " + i);
                }
            } finally {
                done.set(true);
                other.join();
            }
        }
    }

    interface Matmul {
        void rows(int from, int to, MemorySegment out);
    }

    interface Job {
        void run(MemorySegment out);
    }

    /** The output of job as floats (the rows' gap in each token's stride stays zero). */
    private static float[] products(Arena arena, int n, Job job) {
        MemorySegment out = arena.allocate((long) n * 4, 64);
        job.run(out);
        return out.toArray(ValueLayout.JAVA_FLOAT);
    }

    private static void fill(MemorySegment x, SplittableRandom rnd, int n) {
        for (int i = 0; i < n; i++) x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextGaussian());
    }

    /** A random [rows, cols] matrix in type. */
    private static MemorySegment weights(Arena arena, SplittableRandom rnd, WeightType type, int rows, int cols) {
        MemorySegment w = arena.allocate(type.rowBytes(cols) * rows, 64);
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) row[i] = (float) rnd.nextGaussian();
            long at = r * type.rowBytes(cols);
            switch (type) {
                case F32 -> MemorySegment.copy(row, 0, w, ValueLayout.JAVA_FLOAT_UNALIGNED, at, cols);
                case BF16 -> {
                    for (int i = 0; i < cols; i++) {
                        w.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + 2L * i, (short) (Float.floatToRawIntBits(row[i]) >>> 16));
                    }
                }
                default -> Quant.quantizeRow(type, row, 0, cols, w, at);
            }
        }
        return w;
    }
}
