package aya.cli;

import aya.AyaException;
import aya.kernels.KernelBench;
import aya.kernels.WeightType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code ./aya bench-kernels}: Java vs native kernels on Tiny Aya's shapes (see aya.kernels.KernelBench). */
@Command(name = "bench-kernels", mixinStandardHelpOptions = true,
        description = "Benchmark the Java and native kernels on Tiny Aya's matrix shapes (decode and prefill), 1 and 2 threads.")
public final class KernelBenchCommand implements Callable<Integer> {

    @Option(names = "--backends", split = ",", defaultValue = "java,native", description = "Backends to compare (default: ${DEFAULT-VALUE}).")
    List<String> backends;

    @Option(names = "--threads", split = ",", defaultValue = "1,2", description = "Thread counts (default: ${DEFAULT-VALUE}).")
    List<Integer> threads;

    @Option(names = "--tokens", defaultValue = "64", description = "Tokens per prefill matmul (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--type", defaultValue = "bf16", description = "Weight type: f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k (default: ${DEFAULT-VALUE}).")
    String type;

    @Option(names = "--seconds", defaultValue = "1.5", description = "Timing budget per case (default: ${DEFAULT-VALUE}).")
    double seconds;

    @Option(names = "--activations", defaultValue = "f32", paramLabel = "TYPE",
            description = "Activations of the matrix products: f32, or bf16 (rounded to bf16, the --activations bf16 path; bf16 weights only) (default: ${DEFAULT-VALUE}).")
    String activations;

    @Option(names = "--small", description = "Only the 2048x2048 and 512x2048 shapes (quick check).")
    boolean small;

    @Option(names = "--from-memory", description = "Decode reads its weights from memory, as in the model: each call takes "
            + "the next of several copies of the matrix (>= 512 MiB in all) instead of the same cached one.")
    boolean fromMemory;

    @Override
    public Integer call() {
        WeightType weightType;
        try {
            weightType = WeightType.valueOf(type.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new AyaException("unknown weight type '" + type + "' (expected f32, f16, bf16, q8_0, q4_0, q5_0, q4_k or q6_k)");
        }
        boolean bf16Activations = switch (activations.strip().toLowerCase(Locale.ROOT)) {
            case "f32" -> false;
            case "bf16" -> true;
            default -> throw new AyaException("--activations '" + activations + "': expected f32 or bf16");
        };
        if (bf16Activations && weightType != WeightType.BF16) {
            throw new AyaException("--activations bf16 needs --type bf16 (it rounds the activations of bf16 weight matrices), got " + type);
        }
        if (tokens < 2) throw new AyaException("--tokens must be at least 2 (the prefill case), got " + tokens);
        if (seconds <= 0) throw new AyaException("--seconds must be positive, got " + seconds);
        for (int t : threads) if (t < 1) throw new AyaException("--threads must be at least 1, got " + t);
        for (String b : backends) {
            if (!b.equals("java") && !b.equals("native")) throw new AyaException("unknown backend '" + b + "' (java, native)");
        }
        KernelBench.run(new KernelBench.Options(backends, threads, tokens, weightType, seconds, small, bf16Activations, fromMemory));
        return 0;
    }
}
