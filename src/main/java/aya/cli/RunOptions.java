package aya.cli;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.kernels.Parallel;
import aya.kernels.WeightType;
import aya.model.Activations;
import picocli.CommandLine.Option;

import java.io.PrintStream;

/** How to run a model, for every command that loads one: kernels, threads, weight and activation precision. */
final class RunOptions {

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "NAME",
            description = "Kernels: java, native or auto (native, else java with a warning). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Worker threads (default: available cores).")
    Integer threads;

    @Option(names = "--quant", paramLabel = "TYPE",
            description = "Quantize the weight matrices at load: q8_0 or q4_0 (GGUF numerics; cached in <model>/aya-cache). "
                    + "Default: the checkpoint's own types.")
    String quant;

    @Option(names = "--activations", defaultValue = "f32", paramLabel = "TYPE",
            description = "Activations of the bf16 weight-matrix products: f32 or bf16 (opt-in; rounds them to bf16 in prefill and decode, "
                    + "as llama.cpp's BF16 path does: 2x the multiply-adds per instruction on CPUs with AVX512_BF16). Default: ${DEFAULT-VALUE}.")
    String activations;

    /** One-line errors for values out of range or unknown, before anything is loaded. */
    void check() {
        if (threads != null && (threads < 1 || threads > 1024)) {
            throw new AyaException("--threads must be between 1 and 1024, got " + threads);
        }
        parseQuant(quant);
        Activations.parse(activations);
    }

    int threadCount() {
        return threads == null ? Parallel.defaultThreads() : threads;
    }

    WeightType quantType() {
        return parseQuant(quant);
    }

    Activations activationType() {
        return Activations.parse(activations);
    }

    /** The library's load options for these flags (checked first). */
    AyaModel.Options modelOptions(PrintStream log) {
        check();
        return new AyaModel.Options(backend, threads == null ? 0 : threads, log, quantType(), activationType());
    }

    /** The --quant type, or null when not given; a one-line error for anything but q8_0 / q4_0. */
    static WeightType parseQuant(String quant) {
        if (quant == null || quant.equalsIgnoreCase("none")) {
            return null;
        }
        WeightType t = WeightType.quantizedNamed(quant);
        if (t == null) {
            throw new AyaException("--quant '" + quant + "': expected q8_0 or q4_0");
        }
        return t;
    }
}
