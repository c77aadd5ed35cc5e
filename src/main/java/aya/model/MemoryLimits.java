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
        // doubles: a hostile config can make the exact product overflow a long; the cast saturates at Long.MAX_VALUE
        double kvd = c.kvDim();
        double kv = 0;
        double maxCap = 1;
        for (int l = 0; l < c.numLayers(); l++) {
            double cap = c.isSliding(l) ? Math.min(context, (double) c.slidingWindow() + maxBlock - 1) : context;
            kv += 2 * cap * kvd;
            maxCap = Math.max(maxCap, cap);
        }
        double activations = (double) maxBlock
                * (4.0 * c.hiddenSize() + 2.0 * c.qDim() + 2 * kvd + 2.0 * c.intermediateSize() + c.headDim());
        double scores = (double) threads * (maxCap + 15);
        double logits = (double) AyaForward.HEAD_ROWS * c.vocabSize();
        return (long) (Float.BYTES * (kv + activations + scores + logits));
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
