package aya.cli;

import aya.AyaException;
import aya.kernels.Parallel;
import aya.weights.RandomCheckpoint;
import aya.weights.RandomCheckpoint.DType;
import aya.weights.RandomCheckpoint.Shape;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code aya init-random}: a Tiny Aya-shaped checkpoint with random weights, for benchmarks and tests. */
@Command(name = "init-random", mixinStandardHelpOptions = true,
        description = "Write a checkpoint in Tiny Aya's exact Hugging Face layout with random weights "
                + "(full size by default: 6.7 GB in bf16).")
public final class InitRandomCommand implements Callable<Integer> {

    @Option(names = "--output", required = true, paramLabel = "DIR",
            description = "Directory to create (must not exist, or be empty).")
    Path output;

    @Option(names = "--dtype", defaultValue = "bf16", paramLabel = "T",
            description = "Weight type: bf16, f16 or f32 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--seed", defaultValue = "0", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--threads", description = "Threads generating weights (default: all cores).")
    Integer threads;

    @Option(names = "--layers", description = "Number of layers (default: 36).")
    Integer layers;

    @Option(names = "--hidden", description = "Hidden size (default: 2048).")
    Integer hidden;

    @Option(names = "--intermediate", description = "MLP intermediate size (default: 11008).")
    Integer intermediate;

    @Option(names = "--heads", description = "Attention heads (default: 16).")
    Integer heads;

    @Option(names = "--kv-heads", description = "Key/value heads (default: 4).")
    Integer kvHeads;

    @Option(names = "--head-dim", description = "Head dimension (default: 128).")
    Integer headDim;

    @Option(names = "--vocab", description = "Vocabulary size (default: 262144).")
    Integer vocab;

    @Override
    public Integer call() {
        Shape d = Shape.TINY_AYA;
        Shape shape = new Shape(or(hidden, d.hiddenSize(), "--hidden"), or(intermediate, d.intermediateSize(), "--intermediate"),
                or(layers, d.layers(), "--layers"), or(heads, d.heads(), "--heads"), or(kvHeads, d.kvHeads(), "--kv-heads"),
                or(headDim, d.headDim(), "--head-dim"), or(vocab, d.vocabSize(), "--vocab"));
        DType type = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "bf16" -> DType.BF16;
            case "f16" -> DType.F16;
            case "f32" -> DType.F32;
            default -> throw new AyaException("unknown --dtype '" + dtype + "' (expected bf16, f16 or f32)");
        };
        int nThreads = threads == null ? Parallel.defaultThreads() : threads;
        if (nThreads < 1) throw new AyaException("--threads must be >= 1, got " + nThreads);
        long start = System.nanoTime();
        RandomCheckpoint.write(output, shape, type, seed, nThreads);
        double seconds = (System.nanoTime() - start) / 1e9;
        long bytes = RandomCheckpoint.weightBytes(shape, type);
        System.err.printf(Locale.ROOT, "aya: wrote %s (%.2f GB of %s weights, %d layers) in %.1f s%n",
                output, bytes / 1e9, type.name().toLowerCase(Locale.ROOT), shape.layers(), seconds);
        return 0;
    }

    private static int or(Integer value, int fallback, String flag) {
        if (value == null) return fallback;
        if (value <= 0) throw new AyaException(flag + " must be positive, got " + value);
        return value;
    }
}
