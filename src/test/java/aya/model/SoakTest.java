package aya.model;

import aya.kernels.Backend;
import aya.kernels.Backends;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Several sessions (states) decode concurrently on one loaded model for a bounded time (-Daya.soak.seconds,
 * default 6 s per backend): every run gives exactly the single-session ids and logits, native memory (RSS) stays
 * flat while thousands of states are made and closed, and closing releases the states and the worker threads.
 */
class SoakTest {

    static final int SESSIONS = 4, NEW_TOKENS = 12;
    static final String FIXTURE = "bf16-untied-sharded";

    record Result(int[] ids, float[] lastLogits) {}

    /** Greedy decode in a fresh state, closed at the end. */
    static Result decode(AyaForward model, int[] prompt) {
        int vocab = model.config().vocabSize();
        int[] out = new int[NEW_TOKENS];
        float[] last;
        try (AyaForward.State s = model.newState(prompt.length + NEW_TOKENS, 4)) {
            MemorySegment logits = model.forward(s, prompt);
            for (int i = 0; ; i++) {
                int best = 0;
                for (int v = 1; v < vocab; v++) {
                    if (logits.getAtIndex(ValueLayout.JAVA_FLOAT, v) > logits.getAtIndex(ValueLayout.JAVA_FLOAT, best)) best = v;
                }
                out[i] = best;
                if (i + 1 == NEW_TOKENS) {
                    last = logits.asSlice(0, 4L * vocab).toArray(ValueLayout.JAVA_FLOAT);
                    break;
                }
                logits = model.forward(s, new int[] {best});
            }
        }
        return new Result(out, last);
    }

    static long rssBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
        }
        return -1;
    }

    /** Memory the JVM itself has committed (Java heap, code cache, metaspace): RSS that is not the sessions' native memory. */
    static long jvmCommittedBytes() {
        var memory = java.lang.management.ManagementFactory.getMemoryMXBean();
        return memory.getHeapMemoryUsage().getCommitted() + memory.getNonHeapMemoryUsage().getCommitted();
    }

    @Test
    void concurrentSessionsMatchOneSessionAndMemoryStaysFlat() throws Exception {
        long seconds = Long.getLong("aya.soak.seconds", 6);
        int[] base = ModelFixtures.inputIds(FIXTURE);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < SESSIONS; i++) prompts.add(Arrays.copyOfRange(base, i, i + 6 + 3 * i)); // different lengths
        for (String backend : Backends.available()) {
            java.util.Set<String> before = threads();
            try (AyaForward model = AyaForward.load(ModelFixtures.dir(FIXTURE), Backend.open(backend), 2)) {
                List<Result> reference = new ArrayList<>();
                for (int[] p : prompts) reference.add(decode(model, p));
                // the greedy run of the fixture's own prompt is transformers' (checked in AyaForwardParityTest); here
                // the point is that other sessions running at the same time change nothing
                System.gc();
                long rssStart = rssBytes(), jvmStart = jvmCommittedBytes();
                AtomicLong runs = new AtomicLong();
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
                ExecutorService pool = Executors.newFixedThreadPool(SESSIONS);
                try {
                    List<Future<?>> done = new ArrayList<>();
                    for (int t = 0; t < SESSIONS; t++) {
                        int first = t;
                        done.add(pool.submit(() -> {
                            for (int k = first; System.nanoTime() < end; k++) {
                                int which = k % SESSIONS;
                                Result r = decode(model, prompts.get(which));
                                assertArrayEquals(reference.get(which).ids(), r.ids(), backend + " session " + which);
                                // not bit for bit: interpreted and JIT-compiled Vector API code may sum in another order
                                assertArrayEquals(reference.get(which).lastLogits(), r.lastLogits(), 1e-5f, backend + " logits " + which);
                                runs.incrementAndGet();
                            }
                            return null;
                        }));
                    }
                    for (Future<?> f : done) f.get(seconds + 120, TimeUnit.SECONDS);
                } finally {
                    pool.shutdownNow();
                }
                System.gc();
                long rssEnd = rssBytes(), jvmEnd = jvmCommittedBytes();
                System.out.printf("soak %s: %d sessions of %d tokens in %d s on %d threads, RSS %d -> %d MiB, JVM heap+non-heap committed %d -> %d MiB%n",
                        backend, runs.get(), NEW_TOKENS, seconds, SESSIONS, rssStart >> 20, rssEnd >> 20, jvmStart >> 20, jvmEnd >> 20);
                assertTrue(runs.get() >= SESSIONS, "every worker finished at least one session: " + runs.get());
                // every state allocates ~0.1 MiB of native memory; leaking them all would add runs x 0.1 MiB. RSS also holds
                // the JVM's own heap and code cache, which G1 may grow back after earlier tests shrank it: that is not ours
                long jvmGrowth = Math.max(0, jvmEnd - jvmStart);
                assertTrue(rssEnd - rssStart - jvmGrowth < 64L << 20, backend + ": RSS grew from " + rssStart + " to " + rssEnd
                        + " after " + runs.get() + " sessions (JVM-committed memory grew by " + jvmGrowth + ")");
            }
            // closing the model stops its worker threads
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!before.containsAll(threads()) && System.nanoTime() < deadline) Thread.sleep(20);
            java.util.Set<String> after = threads();
            after.removeAll(before);
            assertTrue(after.stream().noneMatch(n -> n.toString().startsWith("aya-worker")), "threads left: " + after);
        }
    }

    @Test
    void aClosedStateOrModelFailsCleanlyInsteadOfCrashing() {
        AyaForward model = AyaForward.load(ModelFixtures.dir("f32-tied"), Backend.open("java"), 1);
        AyaForward.State s = model.newState(16);
        model.forward(s, new int[] {1, 2});
        s.close();
        assertThrows(IllegalStateException.class, () -> model.forward(s, new int[] {3}));
        AyaForward.State live = model.newState(16);
        model.close();
        // the weights are unmapped: Java's arena check turns the access into an exception, never a SIGSEGV
        assertThrows(IllegalStateException.class, () -> model.forward(live, new int[] {3}));
    }

    static java.util.Set<String> threads() {
        java.util.Set<String> names = new java.util.HashSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) if (t.isAlive()) names.add(t.getName() + "#" + t.threadId());
        return names;
    }
}
