package aya.model;

import aya.kernels.Backend;
import aya.kernels.Backends;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 * default 4 s per backend): every run gives exactly the single-session ids and logits, the native memory our code
 * allocates (measured by the JVM's native memory tracking, not RSS) returns to its baseline after the sessions close
 * and never holds more than the live states, and closing the model releases it all and the worker threads.
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

    /**
     * Native memory our code holds: NMT's "Other" category, where the JVM counts every {@code Arena.allocate} (the
     * states' KV caches and activations, tensors converted at load). Exact, unlike RSS, which also holds the pages of
     * the mapped weight files and the JVM's own heap and code cache. Needs -XX:NativeMemoryTracking=summary.
     */
    static long arenaBytes() {
        String summary;
        try {
            summary = (String) java.lang.management.ManagementFactory.getPlatformMBeanServer().invoke(
                    new javax.management.ObjectName("com.sun.management:type=DiagnosticCommand"), "vmNativeMemory",
                    new Object[] {new String[] {"summary"}}, new String[] {String[].class.getName()});
        } catch (Exception e) {
            throw new IllegalStateException("cannot query native memory tracking", e);
        }
        var m = java.util.regex.Pattern.compile("Other \\(reserved=\\d+KB, committed=(\\d+)KB\\)").matcher(summary);
        if (!m.find()) throw new IllegalStateException("no 'Other' line in the NMT summary (run with -XX:NativeMemoryTracking=summary):\n" + summary);
        return Long.parseLong(m.group(1)) * 1024;
    }

    /**
     * Runs {@link Child} in its own JVM with native memory tracking on (so other tests' allocations in the surefire JVM
     * do not count, and the JVM's own memory is told apart) and checks the numbers it prints.
     */
    @Test
    void concurrentSessionsMatchOneSessionAndNativeMemoryReturnsToItsBaseline() throws Exception {
        long seconds = Long.getLong("aya.soak.seconds", 4);
        List<String> backends = Backends.available();
        String javaCommand = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(javaCommand, "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-XX:NativeMemoryTracking=summary", "-cp", System.getProperty("java.class.path"),
                Child.class.getName(), Long.toString(seconds)));
        cmd.addAll(backends);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(2 * seconds + 240, TimeUnit.SECONDS), "soak child finished");
        System.out.print(out);
        assertEquals(0, p.exitValue(), out);
        for (String backend : backends) {
            var line = java.util.regex.Pattern.compile("soak " + backend + ": (\\d+) sessions, state (\\d+) bytes, arena bytes "
                    + "before load (\\d+), loaded (\\d+), peak (\\d+), after sessions (\\d+), after close (\\d+)").matcher(out);
            assertTrue(line.find(), out);
            long runs = Long.parseLong(line.group(1)), state = Long.parseLong(line.group(2));
            long beforeLoad = Long.parseLong(line.group(3)), loaded = Long.parseLong(line.group(4)), peak = Long.parseLong(line.group(5));
            long afterSessions = Long.parseLong(line.group(6)), afterClose = Long.parseLong(line.group(7));
            assertTrue(runs >= SESSIONS, "every worker finished at least one session: " + runs);
            // less than half of one state (NMT counts in KB): a single leaked state would show
            long slack = Math.max(state / 2, 8 << 10);
            // the java backend keeps one GEMM scratch per call that ran at the same time (a bounded cache, freed on
            // close): at most one per session thread and pool worker beyond the ones the reference runs made
            var config = aya.config.ModelConfig.load(ModelFixtures.dir(FIXTURE));
            int widest = Math.max(config.hiddenSize(), Math.max(config.intermediateSize(), config.numHeads() * config.headDim()));
            long scratch = backend.equals("java") ? (SESSIONS + 1) * aya.kernels.JavaKernels.gemmScratchBytes(widest) : 0;
            assertTrue(afterSessions - loaded < slack + scratch && loaded - afterSessions < slack, backend + ": after " + runs
                    + " sessions of " + state + " bytes each, arena memory went from " + loaded + " to " + afterSessions
                    + " (allowed: " + scratch + " bytes of GEMM scratch)");
            // at most SESSIONS states are alive at once, however many sessions were made (+ one state's worth: the
            // JDK's own per-thread allocations while the 5 pool threads live, ~40 KB measured, count as "Other" too)
            assertTrue(peak - loaded <= (SESSIONS + 1) * state + scratch, backend + ": peak " + peak + " above " + loaded + " + "
                    + (SESSIONS + 1) + " states of " + state + " after " + runs + " sessions");
            assertTrue(Math.abs(afterClose - beforeLoad) < slack, backend + ": closing the model left "
                    + (afterClose - beforeLoad) + " bytes of arena memory");
        }
    }

    /** The soak itself, in the child JVM: prints one "soak ..." line; a failed check exits non-zero. */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            long seconds = Long.parseLong(args[0]);
            for (int i = 1; i < args.length; i++) soak(args[i], seconds);
        }

        static void soak(String backend, long seconds) throws Exception {
            int[] base = ModelFixtures.inputIds(FIXTURE);
            List<int[]> prompts = new ArrayList<>();
            for (int i = 0; i < SESSIONS; i++) prompts.add(Arrays.copyOfRange(base, i, i + 6 + 3 * i)); // different lengths
            java.util.Set<String> before = threads();
            long beforeLoad = arenaBytes(), loaded, peakSeen, afterSessions, state = 0;
            AtomicLong runs = new AtomicLong();
            try (AyaForward model = AyaForward.load(ModelFixtures.dir(FIXTURE), Backend.open(backend), 2)) {
                List<Result> reference = new ArrayList<>();
                for (int[] p : prompts) reference.add(decode(model, p));
                // what the largest state really takes (MemoryLimits' estimate leaves out alignment padding)
                long withoutState = arenaBytes();
                try (AyaForward.State s = model.newState(prompts.getLast().length + NEW_TOKENS, 4)) {
                    state = arenaBytes() - withoutState;
                }
                // the greedy run of the fixture's own prompt is transformers' (checked in AyaForwardParityTest); here
                // the point is that other sessions running at the same time change nothing
                loaded = arenaBytes();
                AtomicLong peak = new AtomicLong(loaded);
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
                ExecutorService pool = Executors.newFixedThreadPool(SESSIONS + 1);
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
                    Future<?> sampler = pool.submit(() -> {
                        while (System.nanoTime() < end) {
                            peak.accumulateAndGet(arenaBytes(), Math::max);
                            Thread.sleep(50);
                        }
                        return null;
                    });
                    for (Future<?> f : done) f.get(seconds + 120, TimeUnit.SECONDS);
                    sampler.get(seconds + 120, TimeUnit.SECONDS);
                } finally {
                    pool.shutdownNow();
                    pool.awaitTermination(60, TimeUnit.SECONDS);
                }
                peakSeen = peak.get();
                // the JDK frees some per-thread memory of the pool's threads a little after they end: wait for that
                afterSessions = arenaBytes();
                for (int i = 0; i < 20 && afterSessions != loaded; i++) {
                    Thread.sleep(100);
                    afterSessions = Math.min(afterSessions, arenaBytes());
                }
            }
            long afterClose = arenaBytes();
            System.out.printf("soak %s: %d sessions, state %d bytes, arena bytes before load %d, loaded %d, peak %d, "
                            + "after sessions %d, after close %d (%d s, %d threads)%n", backend, runs.get(), state, beforeLoad,
                    loaded, peakSeen, afterSessions, afterClose, seconds, SESSIONS);
            // closing the model stops its worker threads
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!before.containsAll(threads()) && System.nanoTime() < deadline) Thread.sleep(20);
            java.util.Set<String> after = threads();
            after.removeAll(before);
            assertTrue(after.stream().noneMatch(n -> n.startsWith("aya-worker")), "threads left: " + after);
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
