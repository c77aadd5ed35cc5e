package aya.kernels;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A persistent pool of platform threads that cuts a range of work into contiguous pieces; the threads, the calling
 * thread among them, take pieces in order from a shared counter until none are left. So a thread that starts late
 * (woken late, or descheduled by another process on a busy machine) or runs slower leaves its share to the others
 * instead of making them wait, and {@code threads == 1} runs inline with no hand-off.
 * We do not use the common ForkJoin pool: on 2 cores its parallelism is 1.
 * One job runs at a time; callers from several threads take turns (jobs are short: one kernel call).
 */
public final class Parallel implements AutoCloseable {

    /**
     * A piece of work: {@code [start, end)}, run by worker {@code worker} in {@code [0, threads)}. A worker runs one
     * piece at a time, so per-worker scratch indexed by {@code worker} is safe.
     */
    @FunctionalInterface
    public interface RangeTask {
        void run(int worker, int start, int end);
    }

    private final int threads;
    private final Thread[] workers;
    private final AtomicInteger pending = new AtomicInteger();
    private final AtomicInteger nextPiece = new AtomicInteger();
    private volatile long generation;
    private volatile boolean closed;
    private volatile Thread caller;
    // job state, published by the volatile write of generation
    private RangeTask task;
    private int n;
    private int piece;  // elements per piece (the last one may be shorter)
    private int pieces;
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
     * Runs {@code task} over [0, n) in one piece per thread; piece bounds are multiples of {@code align} (except the
     * end). Returns when every piece is done; rethrows a piece's failure.
     */
    public void forRange(int n, int align, RangeTask task) {
        if (align < 1) {
            throw new IllegalArgumentException("align must be >= 1, got " + align);
        }
        long blocks = ((long) n + align - 1) / align;
        forPieces(n, (int) Math.min(Integer.MAX_VALUE, (blocks + threads - 1) / threads * align), task);
    }

    /**
     * Runs {@code task} over [0, n) cut into pieces of {@code piece} elements (the last one shorter), which the
     * threads take in order until none are left. Returns when every piece is done; rethrows a piece's failure (the
     * pieces not yet started then do not run).
     */
    public synchronized void forPieces(int n, int piece, RangeTask task) {
        if (closed) {
            throw new IllegalStateException("thread pool is closed");
        }
        if (piece < 1) {
            throw new IllegalArgumentException("piece must be >= 1, got " + piece);
        }
        if (n <= 0) {
            return;
        }
        int count = (int) (((long) n + piece - 1) / piece);
        if (count == 1 || threads == 1) {
            task.run(0, 0, n);
            return;
        }
        this.task = task;
        this.n = n;
        this.piece = piece;
        this.pieces = count;
        this.failure = null;
        this.caller = Thread.currentThread();
        nextPiece.set(0);
        pending.set(threads - 1);
        generation++; // publishes the job
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        runPieces(0);
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

    /** Takes pieces of the current job until none are left; a failure ends the job's remaining pieces. */
    private void runPieces(int worker) {
        int p;
        while ((p = nextPiece.getAndIncrement()) < pieces) {
            int start = p * piece; // < n, so no overflow
            int end = (int) Math.min(n, (long) start + piece);
            try {
                task.run(worker, start, end);
            } catch (Throwable t) {
                failure = t;
                nextPiece.set(pieces);
            }
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
            runPieces(worker);
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
