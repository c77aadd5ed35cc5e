package aya.bench;

import aya.kernels.Parallel;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The measurement loop of {@code aya bench}, in the spirit of llama-bench: a warm-up, then {@code reps} repetitions
 * of a prefill test (promptTokens at positions depth...) and a decode test (genTokens one by one from position
 * depth), tokens/s as mean ± sd. With several backends the repetitions alternate between them, so slow drifts of a
 * shared machine hit both alike. Memory read bandwidth is measured before loading and after running; the best of the
 * two is the bound decode is compared with.
 */
public final class BenchRunner {

    /** What to run. */
    public record Settings(String model, int promptTokens, int genTokens, int depth, int reps, int threads,
                           long bandwidthBytes, long seed) {
    }

    /** A named way to load one target (load time is measured around it). */
    public record Loader(String backend, Supplier<BenchTarget> load) {
    }

    private final Settings settings;
    private final LongSupplier clock;
    private final Bandwidth.Probe probe;

    public BenchRunner(Settings settings) {
        this(settings, System::nanoTime, Bandwidth::readGbPerSecond);
    }

    /** Tests inject a clock and a bandwidth probe to check the arithmetic exactly. */
    BenchRunner(Settings settings, LongSupplier clock, Bandwidth.Probe probe) {
        this.settings = settings;
        this.clock = clock;
        this.probe = probe;
    }

    public List<BenchResult> run(List<Loader> loaders, Progress progress) {
        Settings s = settings;
        double bwBefore;
        try (Parallel pool = new Parallel(s.threads())) {
            bwBefore = probe.readGbPerSecond(pool, s.bandwidthBytes(), 3);
        }
        progress.note(String.format(Locale.ROOT, "memory read bandwidth (%d threads): %.1f GB/s", s.threads(), bwBefore));
        ProcessMemory.resetPeak(); // the probe's buffer is freed: count only what the model needs

        List<BenchTarget> targets = new ArrayList<>();
        List<Double> loadSeconds = new ArrayList<>();
        double[][] prefill = new double[loaders.size()][s.reps()];
        double[][] decode = new double[loaders.size()][s.reps()];
        long peakRss;
        try {
            for (Loader loader : loaders) {
                long t0 = clock.getAsLong();
                BenchTarget target = loader.load().get();
                loadSeconds.add((clock.getAsLong() - t0) / 1e9);
                targets.add(target);
                checkFits(target);
                progress.note(String.format(Locale.ROOT, "%s: loaded %s (%s, %.2f GB of weights) in %.1f s",
                        target.backend(), s.model(), target.quant(), target.weightBytes() / 1e9, loadSeconds.getLast()));
            }
            SplittableRandom random = new SplittableRandom(s.seed());
            if (s.depth() > 0) {
                for (BenchTarget target : targets) {
                    progress.note(target.backend() + ": filling the KV cache with " + s.depth() + " tokens (untimed)");
                    target.fillContext(s.depth());
                }
            }
            for (BenchTarget target : targets) { // warm-up: JIT, page faults of the mmapped weights, buffers
                target.prefill(randomTokens(random, target, Math.min(64, Math.max(1, s.promptTokens()))), s.depth());
                target.decode(random.nextInt(target.vocabSize()), s.depth());
                target.decode(random.nextInt(target.vocabSize()), s.depth() + 1);
            }
            for (int rep = 0; rep < s.reps(); rep++) {
                for (int b = 0; b < targets.size(); b++) {
                    BenchTarget target = targets.get(b);
                    prefill[b][rep] = Double.NaN;
                    decode[b][rep] = Double.NaN;
                    if (s.promptTokens() > 0) {
                        int[] prompt = randomTokens(random, target, s.promptTokens());
                        long t0 = clock.getAsLong();
                        target.prefill(prompt, s.depth());
                        prefill[b][rep] = s.promptTokens() / ((clock.getAsLong() - t0) / 1e9);
                    }
                    if (s.genTokens() > 0) {
                        int[] tokens = randomTokens(random, target, s.genTokens());
                        long t0 = clock.getAsLong();
                        for (int g = 0; g < tokens.length; g++) target.decode(tokens[g], s.depth() + g);
                        decode[b][rep] = s.genTokens() / ((clock.getAsLong() - t0) / 1e9);
                    }
                    progress.note(String.format(Locale.ROOT, "%s rep %d/%d:%s%s", target.backend(), rep + 1, s.reps(),
                            s.promptTokens() > 0 ? String.format(Locale.ROOT, " prefill %.2f t/s", prefill[b][rep]) : "",
                            s.genTokens() > 0 ? String.format(Locale.ROOT, " decode %.2f t/s", decode[b][rep]) : ""));
                }
            }
            peakRss = ProcessMemory.peakRssBytes();
            for (BenchTarget target : targets) {
                String profile = target.decodeProfile();
                if (profile != null) {
                    for (String line : profile.split("\n")) progress.note(target.backend() + " decode " + line);
                }
            }
        } finally {
            for (BenchTarget t : targets) t.close();
        }
        double bwAfter;
        try (Parallel pool = new Parallel(s.threads())) {
            bwAfter = probe.readGbPerSecond(pool, s.bandwidthBytes(), 3);
        }
        progress.note(String.format(Locale.ROOT, "memory read bandwidth after the runs: %.1f GB/s", bwAfter));
        double bandwidth = Math.max(bwBefore, bwAfter);

        List<BenchResult> results = new ArrayList<>();
        for (int b = 0; b < targets.size(); b++) {
            BenchTarget t = targets.get(b);
            // decode positions run from depth to depth + genTokens - 1: take the middle one's traffic
            long bytesPerToken = t.bytesReadPerDecodeToken(s.depth() + s.genTokens() / 2);
            results.add(new BenchResult(s.model(), t.backend(), t.kernels(), t.quant(), t.activations(), s.threads(),
                    s.promptTokens(), s.genTokens(), s.depth(), s.reps(),
                    s.promptTokens() > 0 ? Stats.of(prefill[b]) : Stats.of(),
                    s.genTokens() > 0 ? Stats.of(decode[b]) : Stats.of(),
                    bandwidth, bytesPerToken, loadSeconds.get(b), t.weightBytes(), peakRss));
        }
        return results;
    }

    private void checkFits(BenchTarget t) {
        long needed = (long) settings.depth() + Math.max(settings.promptTokens(), settings.genTokens());
        if (needed > t.maxPositions()) {
            throw new aya.AyaException("--depth + max(--prompt-tokens, --gen-tokens) = " + needed
                    + " exceeds the model's " + t.maxPositions() + " positions");
        }
    }

    private static int[] randomTokens(SplittableRandom random, BenchTarget target, int n) {
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = random.nextInt(target.vocabSize());
        return tokens;
    }

    /** Where progress lines go (stderr in the CLI). */
    @FunctionalInterface
    public interface Progress {
        void note(String line);
    }
}
