package aya.kernels;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A persistent pool of platform threads that splits a range of work into one contiguous slice per thread.
 * The calling thread works on slice 0, so {@code threads == 1} runs inline with no hand-off.
 * We do not use the common ForkJoin pool: on 2 cores its parallelism is 1.
 * One job runs at a time; callers from several threads take turns (jobs are short: one kernel call).
 */
public final class Parallel implements AutoCloseable {

    /** A slice of work: {@code [start, end)}, run by worker {@code worker} in {@code [0, threads)}. */
    @FunctionalInterface
    public interface RangeTask {
        void run(int worker, int start, int end);
    }

    private final int threads;
    private final Thread[] workers;
    private final AtomicInteger pending = new AtomicInteger();
    private volatile long generation;
    private volatile boolean closed;
    private volatile Thread caller;
    // job state, published by the volatile write of generation
    private RangeTask task;
    private int n;
    private int align;
    private volatile Throwable failure;

    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int i = 1; i < threads; i++) {
            int worker = i;
            Thread t = new Thread(() -> workLoop(worker), "aya-worker-" + i);
            t.setDaemon(true);
            workers[i - 1] = t;
            t.start();
        }
    }

    public int threads() {
        return threads;
    }

    /** Default thread count: the cores this JVM may use. */
    public static int defaultThreads() {
        return Runtime.getRuntime().availableProcessors();
    }

    /**
     * Runs {@code task} over [0, n) in one contiguous slice per thread; slice bounds are multiples of
     * {@code align} (except the end). Returns when every slice is done; rethrows a slice's failure.
     */
    public synchronized void forRange(int n, int align, RangeTask task) {
        if (closed) {
            throw new IllegalStateException("thread pool is closed");
        }
        if (n <= 0) {
            return;
        }
        int chunks = Math.max(1, Math.min(threads, (n + align - 1) / align));
        if (chunks == 1) {
            task.run(0, 0, n);
            return;
        }
        this.task = task;
        this.n = n;
        this.align = align;
        this.failure = null;
        this.caller = Thread.currentThread();
        pending.set(threads - 1);
        generation++; // publishes the job
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        try {
            runSlice(0);
        } catch (Throwable t) {
            failure = t;
        }
        int spins = 0;
        while (pending.get() != 0) {
            if (++spins < 20_000) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(50_000);
            }
        }
        this.task = null;
        Throwable f = failure;
        if (f != null) {
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error e) throw e;
            throw new RuntimeException(f);
        }
    }

    private void runSlice(int worker) {
        int blocks = (n + align - 1) / align;
        int start = (int) Math.min(n, (long) blocks * worker / threads * align);
        int end = (int) Math.min(n, (long) blocks * (worker + 1) / threads * align);
        if (start < end) {
            task.run(worker, start, end);
        }
    }

    private void workLoop(int worker) {
        long seen = 0;
        while (true) {
            int spins = 0;
            while (generation == seen) {
                if (closed) {
                    return;
                }
                if (++spins < 20_000) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            seen = generation;
            try {
                runSlice(worker);
            } catch (Throwable t) {
                failure = t;
            }
            if (pending.decrementAndGet() == 0) {
                LockSupport.unpark(caller);
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
