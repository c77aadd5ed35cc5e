package aya.cli;

import aya.AyaException;
import aya.kernels.Backend;
import aya.kernels.Parallel;
import aya.kernels.WeightType;
import aya.model.Activations;
import aya.model.AyaForward;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Options shared by the commands that load a model: which model, which backend, how many threads, how much context. */
final class ModelOptions {

    @Option(names = "--model", required = true, paramLabel = "DIR|FILE.gguf",
            description = "Hugging Face checkpoint directory (config.json + *.safetensors), or a GGUF file.")
    Path model;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "NAME",
            description = "Kernels: java, native or auto (native, else java with a warning). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: available cores).")
    Integer threads;

    @Option(names = "--context", paramLabel = "N",
            description = "Context length (KV-cache positions); default: what the command needs, capped by max_position_embeddings.")
    Integer context;

    @Option(names = "--quant", paramLabel = "TYPE",
            description = "Quantize the weight matrices at load: q8_0 or q4_0 (GGUF numerics; cached in <model>/aya-cache). "
                    + "Default: the checkpoint's own types.")
    String quant;

    @Option(names = "--activations", defaultValue = "f32", paramLabel = "TYPE",
            description = "Activations of the bf16 weight-matrix products: f32 or bf16 (opt-in; rounds them to bf16 in prefill and decode, "
                    + "2x the multiply-adds per instruction on CPUs with AVX512_BF16). Default: ${DEFAULT-VALUE}.")
    String activations;

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

    /** Loads the model: checks the directory, opens the backend, maps and validates the weights. */
    AyaForward load() {
        if (!Files.isDirectory(model) && !Files.isRegularFile(model)) {
            throw new AyaException("--model " + model + ": not a directory or a GGUF file (give a local checkpoint folder with config.json"
                    + " and *.safetensors, or a .gguf file)");
        }
        int n = threads == null ? Parallel.defaultThreads() : threads;
        if (n < 1 || n > 1024) {
            throw new AyaException("--threads must be between 1 and 1024, got " + n);
        }
        if (context != null && context < 1) {
            throw new AyaException("--context must be at least 1, got " + context);
        }
        WeightType quantType = parseQuant(quant);
        Activations activationType = Activations.parse(activations);
        AyaForward loaded = AyaForward.load(model, Backend.open(backend), n, quantType); // the model closes the kernels, also on failure
        try {
            loaded.activations(activationType);
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
        int maxPos = loaded.config().maxPositionEmbeddings();
        if (context != null && context > maxPos) {
            loaded.close();
            throw new AyaException("--context " + context + " is more than the model's max_position_embeddings (" + maxPos + ")");
        }
        return loaded;
    }

    /** The context for a run that needs {@code needed} positions: --context if given (it must fit), else needed. */
    int contextFor(int needed) {
        int ctx = context == null ? needed : context;
        if (needed > ctx) {
            throw new AyaException(needed + " tokens do not fit the context of " + ctx + " (--context)");
        }
        return ctx;
    }

    /** Parses "5,17,42" into ids; rejects anything that is not a comma-separated list of non-negative integers. */
    static int[] parseIds(String text) {
        if (text == null || text.isBlank()) {
            throw new AyaException("--ids is empty: give comma-separated token ids, e.g. --ids 2,17,42");
        }
        String[] parts = text.split(",", -1);
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].strip();
            try {
                ids[i] = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new AyaException("--ids: '" + p + "' (item " + (i + 1) + ") is not a token id; expected comma-separated integers");
            }
            if (ids[i] < 0) {
                throw new AyaException("--ids: " + ids[i] + " (item " + (i + 1) + ") is negative");
            }
        }
        return ids;
    }
}
