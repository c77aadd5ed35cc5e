package aya.hub;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress line on stderr: redrawn in place up to 5 times a second on a terminal, otherwise one line every
 * 10 seconds (logs stay short), and a summary line when a file is done.
 */
final class DownloadProgress {

    private final PrintStream out;      // null = silent
    private final boolean terminal;
    private final String name;
    private final long total;           // -1 if unknown
    private final long startOffset;     // bytes already there when this run started (resume)
    private final long startNanos = System.nanoTime();
    private long lastPrintNanos = System.nanoTime();
    private long done;
    private boolean drawn;

    DownloadProgress(PrintStream out, boolean terminal, String name, long total, long startOffset) {
        this.out = out;
        this.terminal = terminal;
        this.name = name;
        this.total = total;
        this.startOffset = startOffset;
        this.done = startOffset;
        if (out != null && startOffset > 0) {
            out.println("aya: resuming " + name + " at " + bytes(startOffset) + (total > 0 ? " of " + bytes(total) : ""));
        }
    }

    /** Whether stderr is probably a terminal (the JDK only tells about the console as a whole). */
    static boolean stderrIsTerminal() {
        var console = System.console();
        return console != null && console.isTerminal();
    }

    void advance(long n) {
        done += n;
        if (out == null) return;
        long now = System.nanoTime();
        long interval = terminal ? 200_000_000L : 10_000_000_000L;
        if (now - lastPrintNanos < interval) return;
        lastPrintNanos = now;
        if (terminal) {
            out.print("\r" + line() + "   ");
            drawn = true;
        } else {
            out.println("aya: " + line());
        }
        out.flush();
    }

    void finish() {
        if (out == null) return;
        if (drawn) out.print("\r");
        double seconds = (System.nanoTime() - startNanos) / 1e9;
        out.println("aya: downloaded " + name + " (" + bytes(done) + (seconds >= 1 ? String.format(Locale.ROOT,
                " in %.1f s, %.1f MB/s", seconds, (done - startOffset) / 1e6 / seconds) : "") + ")" + (drawn ? "          " : ""));
        out.flush();
    }

    private String line() {
        double seconds = Math.max((System.nanoTime() - startNanos) / 1e9, 1e-3);
        String rate = String.format(Locale.ROOT, "%.1f MB/s", (done - startOffset) / 1e6 / seconds);
        if (total > 0) {
            return String.format(Locale.ROOT, "%s %s / %s %3d%% %s", name, bytes(done), bytes(total), done * 100 / total, rate);
        }
        return name + " " + bytes(done) + " " + rate;
    }

    static String bytes(long n) {
        if (n >= 1_000_000_000L) return String.format(Locale.ROOT, "%.2f GB", n / 1e9);
        if (n >= 1_000_000L) return String.format(Locale.ROOT, "%.1f MB", n / 1e6);
        if (n >= 1_000L) return String.format(Locale.ROOT, "%.1f kB", n / 1e3);
        return n + " B";
    }
}
