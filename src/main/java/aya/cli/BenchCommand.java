package aya.cli;

import aya.AyaException;
import aya.bench.Bandwidth;
import aya.bench.BenchReport;
import aya.bench.BenchResult;
import aya.bench.BenchRunner;
import aya.bench.BenchTargets;
import aya.kernels.WeightType;
import aya.kernels.Parallel;
import aya.model.Activations;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code aya bench}: prefill and decode throughput, in the spirit of llama-bench. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Measure prefill and decode tokens/s (random prompt tokens), load time, "
        + "peak memory and the machine's memory read bandwidth in the same run.")
public final class BenchCommand implements Callable<Integer> {

    /**
     * Fewest decode steps per repetition: a handful of steps mostly times the first step after the prefill (its caches
     * and the thread pool's wake-up), so a short test reports a decode speed the model never has in a real answer.
     */
    static final int MIN_GEN_TOKENS = 16;

    @Option(names = "--model", paramLabel = "DIR|FILE.gguf", description = "Model directory (e.g. from 'aya init-random') or GGUF file.")
    Path model;

    @Option(names = "--backend", defaultValue = "java", paramLabel = "B",
            description = "java, native or both (one after the other, each alone; prints the ratio). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--prompt-tokens", defaultValue = "512", paramLabel = "N",
            description = "Prefill test size (0 skips it). Default: ${DEFAULT-VALUE}.")
    int promptTokens;

    @Option(names = "--gen-tokens", defaultValue = "32", paramLabel = "N",
            description = "Decode test size: 0 skips it, else at least " + MIN_GEN_TOKENS + ". Default: ${DEFAULT-VALUE}.")
    int genTokens;

    @Option(names = "--depth", defaultValue = "0", paramLabel = "D",
            description = "Context already in the KV cache: D random tokens are prefilled once (untimed), then every "
                    + "test runs at positions D... (llama-bench's -d). Default: ${DEFAULT-VALUE}.")
    int depth;

    @Option(names = "--threads", paramLabel = "N", description = "Threads (default: all cores).")
    Integer threads;

    @Option(names = "--reps", defaultValue = "3", paramLabel = "R", description = "Repetitions. Default: ${DEFAULT-VALUE}.")
    int reps;

    @Option(names = "--quant", paramLabel = "TYPE",
            description = "Quantize the weights at load: q8_0 or q4_0 (cached next to the model). Default: the checkpoint's types.")
    String quant;

    @Option(names = "--activations", defaultValue = "f32", paramLabel = "TYPE",
            description = "Activations of the bf16 weight-matrix products: f32 or bf16 (opt-in; rounds them to bf16 in prefill and decode, "
                    + "2x the multiply-adds per instruction on CPUs with AVX512_BF16). Default: ${DEFAULT-VALUE}.")
    String activations;

    @Option(names = "--json", description = "Print one JSON object per line per backend instead of the table.")
    boolean json;

    @Option(names = "--profile", description = "Also print where the time of a prefill and of a decode step goes, per operation (ms per pass).")
    boolean profile;

    @Option(names = "--bandwidth-only", description = "Only measure the memory read bandwidth (no model needed).")
    boolean bandwidthOnly;

    @Option(names = "--bandwidth-mb", defaultValue = "1024", paramLabel = "MB",
            description = "Size of the bandwidth probe's buffer in MiB. Default: ${DEFAULT-VALUE}.")
    int bandwidthMb;

    @Override
    public Integer call() {
        int nThreads = threads == null ? Parallel.defaultThreads() : threads;
        if (nThreads < 1) throw new AyaException("--threads must be >= 1, got " + nThreads);
        if (reps < 1) throw new AyaException("--reps must be >= 1, got " + reps);
        if (promptTokens < 0 || genTokens < 0 || depth < 0) {
            throw new AyaException("--prompt-tokens, --gen-tokens and --depth must be >= 0");
        }
        if (promptTokens == 0 && genTokens == 0) throw new AyaException("nothing to measure: --prompt-tokens and --gen-tokens are 0");
        if (genTokens > 0 && genTokens < MIN_GEN_TOKENS) {
            throw new AyaException("--gen-tokens must be 0 (no decode test) or at least " + MIN_GEN_TOKENS + ", got "
                    + genTokens + ": fewer steps time the first one's warm-up more than decoding");
        }
        if (bandwidthMb < 1) throw new AyaException("--bandwidth-mb must be >= 1, got " + bandwidthMb);
        long bandwidthBytes = (long) bandwidthMb << 20;

        if (bandwidthOnly) {
            double gbs;
            try (Parallel pool = new Parallel(nThreads)) {
                gbs = Bandwidth.readGbPerSecond(pool, bandwidthBytes, reps);
            }
            if (json) {
                System.out.printf(Locale.ROOT, "{\"threads\":%d,\"buffer_bytes\":%d,\"read_gb_per_s\":%.3f}%n",
                        nThreads, bandwidthBytes, gbs);
            } else {
                System.out.printf(Locale.ROOT, "memory read bandwidth: %.2f GB/s (%d threads, %d MiB buffer, best of %d)%n",
                        gbs, nThreads, bandwidthMb, reps);
            }
            return 0;
        }

        if (model == null) throw new AyaException("--model is required (or use --bandwidth-only)");
        if (!Files.isDirectory(model) && !Files.isRegularFile(model)) throw new AyaException("model directory or GGUF file not found: " + model);
        List<String> backends = switch (backend.toLowerCase(Locale.ROOT)) {
            case "java" -> List.of("java");
            case "native" -> List.of("native");
            case "both" -> List.of("java", "native");
            default -> throw new AyaException("unknown --backend '" + backend + "' (expected java, native or both)");
        };
        WeightType quantType = RunOptions.parseQuant(quant);
        Activations activationType = Activations.parse(activations);
        List<BenchRunner.Loader> loaders = new ArrayList<>();
        // positions used: the warm-up (64 tokens) and the tests, all starting at the depth
        int context = depth + Math.max(64, Math.max(promptTokens, genTokens)) + 1;
        for (String b : backends) {
            loaders.add(new BenchRunner.Loader(b, () -> BenchTargets.load(model, b, nThreads, context, quantType, activationType, profile)));
        }
        BenchRunner.Settings settings = new BenchRunner.Settings(model.toString(), promptTokens, genTokens, depth, reps,
                nThreads, bandwidthBytes, 42);
        List<BenchResult> results = new BenchRunner(settings).run(loaders, line -> System.err.println("aya: " + line));
        if (json) {
            for (BenchResult r : results) System.out.println(r.toJson());
        } else {
            System.out.print(BenchReport.text(results));
        }
        return 0;
    }
}
