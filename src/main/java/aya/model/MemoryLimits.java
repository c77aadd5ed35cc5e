package aya.model;

import aya.AyaException;
import aya.config.ModelConfig;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Checks, before allocating, that a run state (KV cache + activations) fits in the memory this machine has now.
 * Native memory is not bounded by -Xmx and Linux overcommits: an allocation far beyond RAM "succeeds" and the
 * process is killed later while filling it, so the check has to come first.
 */
public final class MemoryLimits {

    private MemoryLimits() {}

    /** Bytes of native memory a {@link AyaForward.State} with this shape allocates (mirrors its constructor). */
    public static long stateBytes(ModelConfig c, int context, int maxBlock, int threads) {
        return saturatedSum(kvBytes(c, context, maxBlock), scratchBytes(c, maxBlock, maxCapacity(c, context, maxBlock), threads));
    }

    /** Bytes of the KV cache of a state (all a batch state allocates, see AyaForward.newBatchState). */
    public static long kvBytes(ModelConfig c, int context, int maxBlock) {
        // doubles: a hostile config can make the exact product overflow a long; the cast saturates at Long.MAX_VALUE
        double kv = 0;
        for (int l = 0; l < c.numLayers(); l++) {
            kv += 2 * slots(c, l, context, maxBlock) * (double) c.kvDim();
        }
        return (long) (Float.BYTES * kv);
    }

    /** Bytes of the activations of a pass over up to {@code rows} rows whose queries see up to {@code capacity} keys. */
    public static long scratchBytes(ModelConfig c, int rows, int capacity, int threads) {
        double activations = (double) rows
                * (4.0 * c.hiddenSize() + 2.0 * c.qDim() + 2.0 * c.kvDim() + 2.0 * c.intermediateSize() + c.headDim());
        double scores = (double) threads * (capacity + 15.0);
        double logits = (double) AyaForward.HEAD_ROWS * c.vocabSize();
        return (long) (Float.BYTES * (activations + scores + logits));
    }

    private static double slots(ModelConfig c, int layer, int context, int maxBlock) {
        return c.isSliding(layer) ? Math.min(context, (double) c.slidingWindow() + maxBlock - 1) : context;
    }

    private static int maxCapacity(ModelConfig c, int context, int maxBlock) {
        double max = 1;
        for (int l = 0; l < c.numLayers(); l++) max = Math.max(max, slots(c, l, context, maxBlock));
        return (int) max;
    }

    private static long saturatedSum(long a, long b) {
        long sum = a + b;
        return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
    }

    /** Memory the kernel says can be handed out now without swapping (MemAvailable), else the JVM's view of free RAM. */
    public static long availableBytes() {
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/meminfo"));
            for (String line : lines) {
                if (line.startsWith("MemAvailable:")) {
                    String[] parts = line.substring("MemAvailable:".length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024; // the unit is kB
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or an unexpected format: fall through to the JVM's number
        }
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getFreeMemorySize();
        }
        return Long.MAX_VALUE;
    }

    /**
     * What one state may take: what the kernel can hand out now (MemAvailable), and never more than 80% of the RAM,
     * since the memory-mapped weights need page cache too.
     */
    public static long limitBytes() {
        long total = totalBytes();
        long available = availableBytes();
        return total > 0 ? Math.min(available, total / 10 * 8) : available;
    }

    static long totalBytes() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return -1;
    }

    /** Throws a one-line AyaException when {@code bytes} (a state for {@code context} tokens) exceed {@code available}. */
    public static void checkFits(long bytes, long available, int context) {
        if (bytes > available) {
            throw new AyaException("a context of " + context + " tokens needs " + mib(bytes) + " for the KV cache and"
                    + " activations, but only " + mib(available) + " of memory is available: use a smaller --context");
        }
    }

    static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / (1024.0 * 1024.0));
    }
}
