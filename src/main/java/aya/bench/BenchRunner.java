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
 * depth), tokens/s as mean ± sd. Several backends run one after the other, each alone: load, make every weight page
 * resident (part of the load time), measure, close, then the next, so neither runs against the other's threads or
 * its page faults. Memory read bandwidth is measured right before and right after each backend's timed
 * repetitions (the host's bandwidth drifts over minutes on a shared machine); the better of the two is the bound
 * that backend's decode is compared with.
 */
public final class BenchRunner {

    /** What to run. */
    public record Settings(String model, int promptTokens, int genTokens, int depth, int reps, int threads,
                           long bandwidthBytes, long seed) {
    }

    /** A named way to load one target (load time is measured around it). */
    public record Loader(String backend, Supplier<BenchTarget> load) {
    }

    /** Untimed decode steps before the timed repetitions (and before a profile starts counting). */
    public static final int WARMUP_DECODES = 32;

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
        List<Measured> measured = new ArrayList<>();
        for (Loader loader : loaders) { // one backend at a time: the other's threads are gone while this one runs
            measured.add(measure(loader, progress));
        }

        List<BenchResult> results = new ArrayList<>();
        for (Measured m : measured) {
            results.add(new BenchResult(s.model(), m.backend(), m.kernels(), m.quant(), m.activations(), s.threads(),
                    s.promptTokens(), s.genTokens(), s.depth(), s.reps(),
                    s.promptTokens() > 0 ? Stats.of(m.prefill()) : Stats.of(),
                    s.genTokens() > 0 ? Stats.of(m.decode()) : Stats.of(),
                    m.bandwidth(), m.bytesPerToken(), m.loadSeconds(), m.weightBytes(), m.peakRssBytes()));
        }
        return results;
    }

    /** What one backend's run leaves for its result (the target is closed by then). */
    private record Measured(String backend, String kernels, String quant, String activations, long weightBytes,
                            long bytesPerToken, double loadSeconds, long peakRssBytes, double[] prefill, double[] decode,
                            double bandwidth) {
    }

    /** Memory read bandwidth now, GB/s, on a pool of its own (the target's threads are idle meanwhile). */
    private double readBandwidth() {
        try (Parallel pool = new Parallel(settings.threads())) {
            return probe.readGbPerSecond(pool, settings.bandwidthBytes(), 3);
        }
    }

    /**
     * Loads one target, makes its weights resident (counted as load time), fills the context, warms up, runs the
     * repetitions and closes it. Every backend gets the same random token ids.
     */
    private Measured measure(Loader loader, Progress progress) {
        Settings s = settings;
        ProcessMemory.resetPeak(); // an earlier backend and its probes are freed: count only this one
        long t0 = clock.getAsLong();
        BenchTarget target = loader.load().get();
        try {
            long resident = target.touchWeights();
            double loadSeconds = (clock.getAsLong() - t0) / 1e9;
            checkFits(target);
            long packed = target.packedBytes();
            progress.note(String.format(Locale.ROOT, "%s: loaded %s (%s, %.2f GB of weights, %.2f GB made resident%s) in %.1f s",
                    target.backend(), s.model(), target.quant(), target.weightBytes() / 1e9, resident / 1e9,
                    packed > 0 ? String.format(Locale.ROOT, ", +%.2f GB packed by %s", packed / 1e9, target.backend()) : "",
                    loadSeconds));
            SplittableRandom random = new SplittableRandom(s.seed());
            if (s.depth() > 0) {
                progress.note(target.backend() + ": filling the KV cache with " + s.depth() + " tokens (untimed)");
                target.fillContext(s.depth());
            }
            // warm-up: JIT, buffers. The decode steps go on until the forward pass's own Java code (its per-layer
            // lambdas run a few hundred times a step) is C2-compiled too: after 2 steps the first timed rep of a Java
            // q4_0 decode ran at 70-80% of the later ones (C2 still compiling kernels in it), after 34 within ~2%.
            // The prefill warm-up is the test's own length (as llama-bench's): after a 64-token one, the first timed
            // 128-token Java prefill still ran at 57-75% of the second.
            target.prefill(randomTokens(random, target, Math.max(1, s.promptTokens())), s.depth());
            int span = Math.max(2, s.genTokens()); // warm-up positions repeat the tests' own (depth .. depth + span)
            for (int g = 0; g < WARMUP_DECODES; g++) {
                target.decode(random.nextInt(target.vocabSize()), s.depth() + g % span);
            }
            double[] prefill = new double[s.reps()], decode = new double[s.reps()];
            long peakRss = ProcessMemory.peakRssBytes(); // load and warm-up; the probes' buffers must not count
            double bwBefore = readBandwidth();
            ProcessMemory.resetPeak();
            for (int rep = 0; rep < s.reps(); rep++) {
                prefill[rep] = Double.NaN;
                decode[rep] = Double.NaN;
                if (s.promptTokens() > 0) {
                    int[] prompt = randomTokens(random, target, s.promptTokens());
                    long p0 = clock.getAsLong();
                    target.prefill(prompt, s.depth());
                    prefill[rep] = s.promptTokens() / ((clock.getAsLong() - p0) / 1e9);
                }
                if (s.genTokens() > 0) {
                    int[] tokens = randomTokens(random, target, s.genTokens());
                    long d0 = clock.getAsLong();
                    for (int g = 0; g < tokens.length; g++) target.decode(tokens[g], s.depth() + g);
                    decode[rep] = s.genTokens() / ((clock.getAsLong() - d0) / 1e9);
                }
                progress.note(String.format(Locale.ROOT, "%s rep %d/%d:%s%s", target.backend(), rep + 1, s.reps(),
                        s.promptTokens() > 0 ? String.format(Locale.ROOT, " prefill %.2f t/s", prefill[rep]) : "",
                        s.genTokens() > 0 ? String.format(Locale.ROOT, " decode %.2f t/s", decode[rep]) : ""));
            }
            peakRss = Math.max(peakRss, ProcessMemory.peakRssBytes());
            double bwAfter = readBandwidth();
            progress.note(String.format(Locale.ROOT, "%s: memory read bandwidth (%d threads) before / after the timed part: %.1f / %.1f GB/s",
                    target.backend(), s.threads(), bwBefore, bwAfter));
            noteLines(progress, target.backend() + " prefill ", target.prefillProfile());
            noteLines(progress, target.backend() + " decode ", target.decodeProfile());
            // decode positions run from depth to depth + genTokens - 1: take the middle one's traffic
            long bytesPerToken = target.bytesReadPerDecodeToken(s.depth() + s.genTokens() / 2);
            return new Measured(target.backend(), target.kernels(), target.quant(), target.activations(),
                    target.weightBytes(), bytesPerToken, loadSeconds, peakRss, prefill, decode, Math.max(bwBefore, bwAfter));
        } finally {
            target.close();
        }
    }

    private void checkFits(BenchTarget t) {
        long needed = (long) settings.depth() + Math.max(settings.promptTokens(), settings.genTokens());
        if (needed > t.maxPositions()) {
            throw new aya.AyaException("--depth + max(--prompt-tokens, --gen-tokens) = " + needed
                    + " exceeds the model's " + t.maxPositions() + " positions");
        }
    }

    /** Notes each line of a profile report (null: none), prefixed. */
    private static void noteLines(Progress progress, String prefix, String report) {
        if (report == null) return;
        for (String line : report.split("\n")) progress.note(prefix + line);
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
