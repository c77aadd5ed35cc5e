package aya.bench;

import aya.kernels.MappingGuard;
import aya.kernels.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Memory read bandwidth as decode sees it: all threads stream through a buffer far larger than the caches. Decode of a
 * dense model reads every weight once per token, so bandwidth / bytes-per-token is its speed limit.
 * Two readers take turns and the best pass counts: a Vector API sum, and (when the native library loads) the native
 * probe {@code aya_read_probe}, which reads like the decode matvec (four 4 KiB rows at a time, prefetching ~64 KiB
 * ahead). A plain sequential loop under-reads the memory: the Java sum alone measured 25-26 GB/s while the native
 * decode streamed 30.6 GB/s of weights, i.e. "118% of the bound"; one thread, the native probe reads 21 GB/s where a
 * plain loop reads 16-18.
 */
public final class Bandwidth {

    /** Default buffer: 1 GiB, ~1000x the last-level cache, like the weight stream of one decode step. */
    public static final long DEFAULT_BYTES = 1L << 30;

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int BLOCK_BYTES = 1 << 20; // work unit handed to a thread
    private static volatile float sink; // keeps the sums alive so the JIT cannot drop the reads

    private Bandwidth() {
    }

    /** The bandwidth measurement, as a function (tests substitute a fixed one). */
    @FunctionalInterface
    public interface Probe {
        double readGbPerSecond(Parallel pool, long bytes, int reps);
    }

    /** Best-of-{@code reps} read bandwidth in GB/s (1e9 bytes/s) over a fresh off-heap buffer of {@code bytes}. */
    public static double readGbPerSecond(Parallel pool, long bytes, int reps) {
        long blocks = bytes / BLOCK_BYTES;
        if (blocks < 1 || blocks > Integer.MAX_VALUE) throw new IllegalArgumentException("bad buffer size " + bytes);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(blocks * BLOCK_BYTES, 4096);
            // touch every page first (the OS maps pages on first write), in parallel like the reads
            pool.forRange((int) blocks, 1, (w, start, end) ->
                    buf.asSlice((long) start * BLOCK_BYTES, (long) (end - start) * BLOCK_BYTES).fill((byte) 1));
            float[] partial = new float[pool.threads()];
            // JIT warm-up on a cache-sized piece: the Vector API is only fast once C2 has compiled sum()
            for (int i = 0; i < 20_000; i++) partial[0] += sum(buf, 0, 16 << 10);
            long[] nativePartial = new long[pool.threads()];
            boolean nativeProbe = MappingGuard.available();
            double best = 0;
            for (int r = 0; r < reps; r++) {
                long t0 = System.nanoTime();
                pool.forRange((int) blocks, 1, (w, start, end) ->
                        partial[w] += sum(buf, (long) start * BLOCK_BYTES, (long) end * BLOCK_BYTES));
                long ns = System.nanoTime() - t0;
                best = Math.max(best, (double) blocks * BLOCK_BYTES / ns);
                if (nativeProbe) {
                    t0 = System.nanoTime();
                    pool.forRange((int) blocks, 1, (w, start, end) -> nativePartial[w] += MappingGuard.readProbe(
                            buf.asSlice((long) start * BLOCK_BYTES, (long) (end - start) * BLOCK_BYTES)));
                    ns = System.nanoTime() - t0;
                    best = Math.max(best, (double) blocks * BLOCK_BYTES / ns);
                }
            }
            float s = 0;
            for (float p : partial) s += p;
            for (long p : nativePartial) s += p;
            sink = s;
            return best;
        }
    }

    /** Sum of the floats in [from, to); four independent accumulators hide the add latency. */
    static float sum(MemorySegment seg, long from, long to) {
        int step = F.vectorByteSize();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        long i = from;
        for (; i + 4L * step <= to; i += 4L * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, seg, i, ByteOrder.nativeOrder()));
            a1 = a1.add(FloatVector.fromMemorySegment(F, seg, i + step, ByteOrder.nativeOrder()));
            a2 = a2.add(FloatVector.fromMemorySegment(F, seg, i + 2L * step, ByteOrder.nativeOrder()));
            a3 = a3.add(FloatVector.fromMemorySegment(F, seg, i + 3L * step, ByteOrder.nativeOrder()));
        }
        float s = a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
        for (; i + 4 <= to; i += 4) s += seg.get(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
        return s;
    }
}
