package aya.bench;

import aya.generation.AyaModel;
import aya.generation.GenerationResult;
import aya.generation.GenerationSettings;
import aya.generation.Scheduler;
import aya.generation.Session;
import aya.generation.StopReason;
import aya.generation.TokenListener;
import aya.sampling.SamplerSettings;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Run by hand (not a test): aggregate decode tokens/s of 1, 2, 4, 8 ... sequences decoding together through the
 * {@link Scheduler}, each count measured back to back in one process (ratios, not absolute speed, are the result on
 * a shared machine). Decode time is counted from the step after the last sequence's first token to the last token.
 * <pre>
 *   java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp target/aya.jar:target/test-classes \
 *       aya.bench.BatchBench MODEL_DIR [counts=1,2,4,8] [tokens=24] [threads=2] [backend=native]
 * (-Daya.activations=bf16 for the bf16-activation path, -Daya.profile=true for per-op times of every step)
 * </pre>
 */
public final class BatchBench {

    private BatchBench() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        String[] counts = (args.length > 1 ? args[1] : "1,2,4,8").split(",");
        int tokens = args.length > 2 ? Integer.parseInt(args[2]) : 24;
        int threads = args.length > 3 ? Integer.parseInt(args[3]) : 2;
        String backend = args.length > 4 ? args[4] : "native";
        GenerationSettings settings = new GenerationSettings(new SamplerSettings(0, 0, 1, 0, 1, 0, 0), tokens, List.of(), true);
        AyaModel.Options options = new AyaModel.Options(backend, threads, System.err);
        if ("bf16".equals(System.getProperty("aya.activations"))) { // -Daya.activations=bf16: the opt-in bf16 path
            options = options.withActivations(aya.model.Activations.BF16);
        }
        try (AyaModel model = AyaModel.load(dir, options)) {
            System.out.printf(Locale.ROOT, "%s, %s backend, %d threads, %d decode tokens per sequence%n",
                    dir, model.backendName(), model.threads(), tokens);
            try (Session session = model.newSession(128)) { // the plain single-sequence path, for reference
                session.generate(prompt(0), new GenerationSettings(settings.sampling(), 4, List.of(), true), TokenListener.NONE);
                session.reset();
                GenerationResult r = session.generate(prompt(0), settings, TokenListener.NONE);
                System.out.printf(Locale.ROOT, "Session (no scheduler): %.3f tok/s decode%n", r.decodeTokensPerSecond());
            }
            double single = 0;
            boolean profiled = Boolean.getBoolean("aya.profile"); // -Daya.profile=true: per-op times of every step
            java.lang.reflect.Field field = AyaModel.class.getDeclaredField("forward");
            field.setAccessible(true);
            aya.model.AyaForward forward = (aya.model.AyaForward) field.get(model);
            for (String c : counts) {
                int n = Integer.parseInt(c.strip());
                aya.model.ForwardProfile profile = new aya.model.ForwardProfile();
                if (profiled) forward.profile(profile);
                double rate = run(model, n, settings);
                forward.profile(null);
                if (profiled) System.out.println(profile.report());
                if (single == 0) single = rate / n;
                System.out.printf(Locale.ROOT, "  %d sequences: %.3f tok/s aggregate (%.2fx one sequence)%n", n, rate, rate / single);
            }
        }
    }

    /** An 8-token prompt per sequence, different for each (ids below 256: valid in any vocabulary we run). */
    static int[] prompt(int i) {
        int[] p = new int[8];
        p[0] = 2;
        for (int k = 1; k < p.length; k++) p[k] = 10 + (37 * i + 29 * k) % 240;
        return p;
    }

    /** Aggregate decode tokens/s of n sequences started together. */
    static double run(AyaModel model, int n, GenerationSettings settings) throws Exception {
        List<List<Long>> times = new ArrayList<>();
        List<CompletableFuture<Scheduler.Completion>> done = new ArrayList<>();
        try (Scheduler scheduler = new Scheduler(model, new Scheduler.Options(n, 128, n, 0, 64))) {
            for (int i = 0; i < n; i++) {
                List<Long> t = new ArrayList<>();
                CompletableFuture<Scheduler.Completion> f = new CompletableFuture<>();
                times.add(t);
                done.add(f);
                scheduler.submit(prompt(i), settings, new Scheduler.Listener() {
                    @Override
                    public void onToken(int id, String text) {
                        if (id >= 0) t.add(System.nanoTime());
                    }

                    @Override
                    public void onDone(Scheduler.Completion c) {
                        f.complete(c);
                    }

                    @Override
                    public void onError(RuntimeException e) {
                        f.completeExceptionally(e);
                    }
                });
            }
            for (CompletableFuture<Scheduler.Completion> f : done) {
                if (f.get(30, TimeUnit.MINUTES).reason() != StopReason.MAX_TOKENS) throw new IllegalStateException("ended early");
            }
            Scheduler.Stats stats = scheduler.stats();
            long start = 0, end = 0;
            for (List<Long> t : times) {
                start = Math.max(start, t.getFirst());
                end = Math.max(end, t.getLast());
            }
            int counted = 0;
            for (List<Long> t : times) for (long x : t) if (x > start) counted++;
            System.out.printf(Locale.ROOT, "  (%d steps, %.1f rows per step)%n", stats.steps(), (double) stats.stepRowsTotal() / stats.steps());
            return counted * 1e9 / (end - start);
        }
    }
}
