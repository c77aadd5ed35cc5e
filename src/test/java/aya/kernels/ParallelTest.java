package aya.kernels;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.*;

class ParallelTest {

    @Test
    void everyIndexRunsExactlyOnceWithAlignedSlices() {
        try (Parallel pool = new Parallel(3)) {
            for (int n : new int[] {1, 2, 15, 16, 17, 100, 1000}) {
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                pool.forRange(n, 16, (worker, start, end) -> {
                    assertTrue(worker >= 0 && worker < 3);
                    assertEquals(0, start % 16, "slice start aligned");
                    for (int i = start; i < end; i++) hits.incrementAndGet(i);
                });
                for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "index " + i + " of " + n);
            }
        }
    }

    @Test
    void failureInAWorkerReachesTheCaller() {
        try (Parallel pool = new Parallel(2)) {
            // the caller's piece waits until the worker has taken the other one (else the caller could take both)
            CountDownLatch workerStarted = new CountDownLatch(1);
            RuntimeException e = assertThrows(IllegalStateException.class, () ->
                    pool.forRange(100, 1, (w, s, e2) -> {
                        if (w == 1) {
                            workerStarted.countDown();
                            throw new IllegalStateException("boom");
                        }
                        try {
                            workerStarted.await(20, TimeUnit.SECONDS);
                        } catch (InterruptedException ie) {
                            throw new IllegalStateException(ie);
                        }
                    }));
            assertEquals("boom", e.getMessage());
            // the pool still works after a failure
            AtomicIntegerArray hits = new AtomicIntegerArray(10);
            pool.forRange(10, 1, (w, s, e2) -> { for (int i = s; i < e2; i++) hits.incrementAndGet(i); });
            for (int i = 0; i < 10; i++) assertEquals(1, hits.get(i));
        }
    }

    @Test
    void everyIndexRunsExactlyOnceInPiecesOfTheGivenSize() {
        try (Parallel pool = new Parallel(2)) {
            for (int[] c : new int[][] {{1, 1}, {10, 3}, {100, 7}, {64, 64}, {65, 64}, {1000, 1}}) {
                int n = c[0], piece = c[1];
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                pool.forPieces(n, piece, (worker, start, end) -> {
                    assertEquals(0, start % piece, "piece start");
                    assertEquals(Math.min(n, start + piece), end, "piece end");
                    for (int i = start; i < end; i++) hits.incrementAndGet(i);
                });
                for (int i = 0; i < n; i++) assertEquals(1, hits.get(i), "index " + i + " of " + n + " in pieces of " + piece);
            }
        }
    }

    @Test
    void aStalledThreadLeavesTheRestOfTheJobToTheOthers() throws Exception {
        // The worker's first piece blocks until the caller has run every other piece: with a fixed half for each
        // thread the caller could run only 4 of 9 and this would time out.
        int pieces = 10;
        CountDownLatch othersDone = new CountDownLatch(pieces - 1);
        AtomicBoolean stalledOnce = new AtomicBoolean();
        AtomicBoolean timedOut = new AtomicBoolean();
        AtomicIntegerArray hits = new AtomicIntegerArray(pieces);
        try (Parallel pool = new Parallel(2)) {
            pool.forPieces(pieces, 1, (worker, start, end) -> {
                if (worker == 1 && stalledOnce.compareAndSet(false, true)) {
                    try {
                        if (!othersDone.await(20, TimeUnit.SECONDS)) timedOut.set(true);
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                } else {
                    othersDone.countDown();
                }
                hits.incrementAndGet(start);
            });
        }
        assertFalse(timedOut.get(), "the caller did not take the stalled worker's share");
        for (int i = 0; i < pieces; i++) assertEquals(1, hits.get(i), "piece " + i);
    }

    @Test
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aJobIsOverWhenItReturnsAndALateWorkerTakesNothingOfIt() {
        // Thousands of short jobs back to back (the decode's pattern): the caller no longer waits for workers that
        // took no piece, so a worker may look at a job only after it returned. No piece may run twice, be lost, run
        // after its job returned, or run with another job's task or bounds; failing jobs end early and cleanly.
        int jobs = 20_000;
        AtomicInteger late = new AtomicInteger();
        try (Parallel pool = new Parallel(3)) {
            for (int job = 0; job < jobs; job++) {
                int n = 1 + job % 7, piece = 1 + job % 3;
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                AtomicBoolean over = new AtomicBoolean();
                boolean fails = job % 50 == 0 && n > piece;
                int thisJob = job;
                Runnable run = () -> pool.forPieces(n, piece, (worker, start, end) -> {
                    if (over.get()) late.incrementAndGet();
                    assertTrue(end <= n && start % piece == 0, "job " + thisJob + " got [" + start + ", " + end + ")");
                    for (int i = start; i < end; i++) hits.incrementAndGet(i);
                    if (fails && start == 0) throw new IllegalStateException("piece 0 of job " + thisJob);
                });
                if (fails) {
                    assertEquals("piece 0 of job " + job, assertThrows(IllegalStateException.class, run::run).getMessage());
                } else {
                    run.run();
                }
                over.set(true);
                for (int i = 0; i < n; i++) {
                    if (!fails) assertEquals(1, hits.get(i), "job " + job + " index " + i);
                    else assertTrue(hits.get(i) <= 1, "job " + job + " index " + i + " ran twice");
                }
            }
        }
        assertEquals(0, late.get(), "pieces that ran after their job had returned");
    }

    @Test
    void badPieceSizeIsRefused() {
        try (Parallel pool = new Parallel(2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pool.forPieces(10, 0, (w, s, e2) -> { }));
            assertEquals("piece must be >= 1, got 0", e.getMessage());
        }
    }
}
