package aya.cli;

/**
 * What Ctrl-C (SIGINT) does in {@code ./aya}, as in llama.cpp: it ends the program with exit code 130 and one line
 * "aya: interrupted" on stderr, except while chat streams a reply, where the first Ctrl-C only stops that reply
 * (a second one, or one at the prompt, exits). Ending the program runs the shutdown hooks: {@link aya.TempFiles}
 * deletes outputs still being written (no half-written --output, no temp file left); what was streamed to stdout
 * stays; a download's blobs/*.incomplete file stays as it is so the next run resumes it; the OS frees mappings,
 * native memory and file locks.
 *
 * <p>Why sun.misc.Signal (module jdk.unsupported): the JDK has no supported API to handle SIGINT other than
 * shutdown hooks, which cannot keep the program running (chat) and cannot tell Ctrl-C from a normal exit. It is
 * only used here; library users keep the JVM's default (exit 130, hooks run). Installed by {@link Main#main} only,
 * never when tests call {@link Main#run} in their own JVM.
 */
final class CtrlC {

    /** Exit code of a program ended by SIGINT (128 + 2), what shells and llama.cpp use. */
    static final int EXIT_INTERRUPTED = 130;

    private static volatile boolean replyRunning;
    private static volatile boolean stopReply;

    private CtrlC() {
    }

    static void install() {
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("INT"), signal -> onInterrupt());
        } catch (IllegalArgumentException e) {
            // SIGINT is ignored (e.g. started with nohup or in the background) or -Xrs: keep the JVM's behaviour
        }
    }

    private static void onInterrupt() {
        if (replyRunning && !stopReply) {
            stopReply = true;   // chat: the reply loop sees it after the current token
            return;
        }
        var console = System.console();
        // on a terminal the line would follow the echoed ^C in the middle of the streamed text
        System.err.println((console != null && console.isTerminal() ? "\n" : "") + "aya: interrupted");
        System.exit(EXIT_INTERRUPTED); // runs the shutdown hooks (temp files), then halts
    }

    /** Chat: a reply starts; until {@link #endReply()}, the first Ctrl-C sets {@link #replyStopped()} instead of exiting. */
    static void startReply() {
        stopReply = false;
        replyRunning = true;
    }

    /** True once Ctrl-C was pressed during the current reply. */
    static boolean replyStopped() {
        return stopReply;
    }

    static void endReply() {
        replyRunning = false;
        stopReply = false;
    }
}
