package aya.model;

import java.util.Locale;

/**
 * Wall time of the forward pass per kind of operation, summed over calls: where a decode step's time goes
 * ({@code aya bench --profile}). A phase that runs over the thread pool is timed on the calling thread from the job's
 * start to its last slice's end, so hand-off and waiting for the slowest thread count in it.
 * One profile is filled by one thread at a time.
 */
public final class ForwardProfile {

    /** What the forward pass does, in its order. */
    public enum Op {
        EMBED("embedding lookup + RoPE tables"),
        LAYERNORM("input LayerNorm"),
        PROJECTIONS_IN("q/k/v + gate/up projections, SwiGLU"),
        ROPE("RoPE on q and k"),
        KV_WRITE("KV-cache write"),
        ATTENTION("attention"),
        PROJECTIONS_OUT("o_proj + down_proj + residual"),
        HEAD_NORM("final LayerNorm"),
        HEAD("output head (logits)"),
        LOGIT_SCALE("logit scaling");

        final String label;

        Op(String label) {
            this.label = label;
        }
    }

    private final long[] nanos = new long[Op.values().length];
    private long passes; // forward calls timed

    /** Adds the time since {@code since} (a {@link System#nanoTime()}) to {@code op}; returns now, the next phase's start. */
    long lap(Op op, long since) {
        long now = System.nanoTime();
        nanos[op.ordinal()] += now - since;
        return now;
    }

    void countPass() {
        passes++;
    }

    public long passes() {
        return passes;
    }

    /** Total nanoseconds spent in {@code op}. */
    public long nanos(Op op) {
        return nanos[op.ordinal()];
    }

    public void reset() {
        java.util.Arrays.fill(nanos, 0);
        passes = 0;
    }

    /** One line per operation: ms per forward pass and share of the total, largest first. */
    public String report() {
        long total = 0;
        for (long n : nanos) total += n;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "per-op profile over %d forward passes: %.2f ms per pass%n",
                passes, passes == 0 ? 0.0 : total / 1e6 / passes));
        Op[] ops = Op.values().clone();
        java.util.Arrays.sort(ops, (a, b) -> Long.compare(nanos[b.ordinal()], nanos[a.ordinal()]));
        for (Op op : ops) {
            long n = nanos[op.ordinal()];
            sb.append(String.format(Locale.ROOT, "  %-32s %8.3f ms/pass %5.1f%%%n", op.label,
                    passes == 0 ? 0.0 : n / 1e6 / passes, total == 0 ? 0.0 : 100.0 * n / total));
        }
        return sb.toString();
    }
}
