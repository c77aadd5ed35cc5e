package aya.generation;

import java.io.PrintStream;
import java.util.Locale;

/**
 * Model-load progress on stderr, only once loading has taken longer than a threshold (1 s): on a terminal a line
 * rewritten in place as weights are read, otherwise nothing until the end; then a one-line summary.
 */
final class LoadProgress {

    static final long DEFAULT_THRESHOLD_NANOS = 1_000_000_000L;

    private final PrintStream log;     // null = silent
    private final boolean terminal;
    private final long thresholdNanos;
    private final long start = System.nanoTime();
    private long lastDraw;
    private boolean drawn;

    LoadProgress(PrintStream log, boolean terminal, long thresholdNanos) {
        this.log = log;
        this.terminal = terminal;
        this.thresholdNanos = thresholdNanos;
    }

    /** Weights read so far (bytes of all tensors); redraws at most 10 times a second. */
    void update(String what, long done, long total) {
        if (log == null || !terminal) return;
        long now = System.nanoTime();
        if (now - start < thresholdNanos || (drawn && now - lastDraw < 100_000_000L && done < total)) return;
        lastDraw = now;
        drawn = true;
        log.printf(Locale.ROOT, "\raya: %s %3.0f%% (%s of %s)\u001b[K", what, total == 0 ? 100.0 : 100.0 * done / total,
                bytes(done), bytes(total));
        log.flush();
    }

    /** Ends the progress line and prints the summary if loading was slow enough to be worth a word. */
    void done(String summary) {
        if (log == null) return;
        long elapsed = System.nanoTime() - start;
        if (drawn) log.print("\r\u001b[K");
        if (elapsed >= thresholdNanos) {
            log.printf(Locale.ROOT, "aya: %s in %.1f s%n", summary, elapsed / 1e9);
        }
        log.flush();
    }

    /** Whether progress lines may be redrawn in place (an interactive terminal). */
    static boolean stderrIsTerminal() {
        var console = System.console();
        return console != null && console.isTerminal();
    }

    static String bytes(long n) {
        if (n >= 1L << 30) return String.format(Locale.ROOT, "%.2f GB", n / 1e9);
        if (n >= 1L << 20) return String.format(Locale.ROOT, "%.1f MB", n / 1e6);
        return String.format(Locale.ROOT, "%.1f kB", n / 1e3);
    }
}
