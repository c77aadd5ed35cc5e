package aya.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Peak resident memory of this process, from Linux's /proc (0 where /proc is missing). */
public final class ProcessMemory {

    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

    private ProcessMemory() {
    }

    /** VmHWM: the peak resident set size in bytes since start or the last {@link #resetPeak()}. */
    public static long peakRssBytes() {
        return statusKb("VmHWM:") * 1024;
    }

    /** VmRSS: the current resident set size in bytes. */
    public static long rssBytes() {
        return statusKb("VmRSS:") * 1024;
    }

    /**
     * Resets VmHWM to the current RSS (writing 5 to clear_refs), so memory freed before the measured part (e.g. the
     * bandwidth probe's buffer) does not count as the model's peak. Returns false where the kernel does not allow it.
     */
    public static boolean resetPeak() {
        try {
            Files.writeString(CLEAR_REFS, "5");
            return true;
        } catch (IOException | SecurityException e) {
            return false;
        }
    }

    private static long statusKb(String key) {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith(key)) {
                    String value = line.substring(key.length()).trim(); // e.g. "123456 kB"
                    return Long.parseLong(value.split("\\s+")[0]);
                }
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }
}
