package aya.kernels;

import org.junit.jupiter.api.Test;

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
            RuntimeException e = assertThrows(IllegalStateException.class, () ->
                    pool.forRange(100, 1, (w, s, e2) -> { if (w == 1) throw new IllegalStateException("boom"); }));
            assertEquals("boom", e.getMessage());
            // the pool still works after a failure
            AtomicIntegerArray hits = new AtomicIntegerArray(10);
            pool.forRange(10, 1, (w, s, e2) -> { for (int i = s; i < e2; i++) hits.incrementAndGet(i); });
            for (int i = 0; i < 10; i++) assertEquals(1, hits.get(i));
        }
    }
}
