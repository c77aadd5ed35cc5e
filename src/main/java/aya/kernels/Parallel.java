package aya.kernels;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A persistent pool of platform threads that cuts a range of work into contiguous pieces; the threads, the calling
 * thread among them, take pieces in order from a shared counter until none are left. So a thread that starts late
 * (woken late, or descheduled by another process on a busy machine) or runs slower leaves its share to the others
 * instead of making them wait, and {@code threads == 1} runs inline with no hand-off. A job is over when its pieces
 * are: the caller does not wait for a worker that took none (one still waking, or descheduled).
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
    private volatile boolean closed;
    /** The latest job; workers wait for a new one. */
    private volatile Job job;

    /**
     * One forPieces call with its own counters. The caller waits for its pieces to be done, not for every worker to
     * have looked at it: a worker that is descheduled (another process on the core) or still waking up when the
     * others have taken every piece no longer holds up the caller, and when it wakes, it finds this job's counter
     * spent and cannot take a piece of the next one.
     */
    private static final class Job {
        final RangeTask task;
        final int n;
        final int piece;  // elements per piece (the last one may be shorter)
        final int pieces;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger(); // pieces finished, or given up after a failure
        volatile Throwable failure;

        Job(RangeTask task, int n, int piece, int pieces, Thread caller) {
            this.task = task;
            this.n = n;
            this.piece = piece;
            this.pieces = pieces;
            this.caller = caller;
        }
    }

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
        Job j = new Job(task, n, piece, count, Thread.currentThread());
        job = j; // publishes it
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        runPieces(j, 0);
        int spins = 0;
        while (j.done.get() != j.pieces) {
            if (++spins < 20_000) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(50_000);
            }
        }
        Throwable f = j.failure;
        if (f != null) {
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error e) throw e;
            throw new RuntimeException(f);
        }
    }

    /** Takes pieces of job j until none are left; a failure ends the job's remaining pieces. */
    private static void runPieces(Job j, int worker) {
        int p;
        while ((p = j.next.getAndIncrement()) < j.pieces) {
            int start = p * j.piece; // < n, so no overflow
            int end = (int) Math.min(j.n, (long) start + j.piece);
            int finished = 1;
            try {
                j.task.run(worker, start, end);
            } catch (Throwable t) {
                j.failure = t;
                finished += Math.max(0, j.pieces - j.next.getAndSet(j.pieces)); // the pieces nobody will take now
            }
            if (j.done.addAndGet(finished) == j.pieces && Thread.currentThread() != j.caller) {
                LockSupport.unpark(j.caller);
            }
        }
    }

    private void workLoop(int worker) {
        Job seen = null;
        while (true) {
            int spins = 0;
            Job j;
            while ((j = job) == seen) {
                if (closed) {
                    return;
                }
                if (++spins < 20_000) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            seen = j;
            runPieces(j, worker);
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
