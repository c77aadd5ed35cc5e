package aya.cli;

import aya.AyaException;
import aya.kernels.Backend;
import aya.model.AyaForward;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Options of the commands that load a model from a local folder or GGUF file: which model, how to run it, how much context. */
final class ModelOptions {

    @Option(names = "--model", required = true, paramLabel = "DIR|FILE.gguf",
            description = "Hugging Face checkpoint directory (config.json + *.safetensors), or a GGUF file.")
    Path model;

    @Mixin
    RunOptions run;

    @Option(names = "--context", paramLabel = "N",
            description = "Context length (KV-cache positions); default: what the command needs, capped by max_position_embeddings.")
    Integer context;

    /** Loads the model: checks the directory, opens the backend, maps and validates the weights. */
    AyaForward load() {
        run.check(); // the flags first: they need no file
        if (context != null && context < 1) {
            throw new AyaException("--context must be at least 1, got " + context);
        }
        if (!Files.isDirectory(model) && !Files.isRegularFile(model)) {
            throw new AyaException("--model " + model + ": not a directory or a GGUF file (give a local checkpoint folder with config.json"
                    + " and *.safetensors, or a .gguf file)");
        }
        // the model closes the kernels, also on failure
        AyaForward loaded = AyaForward.load(model, Backend.open(run.backend), run.threadCount(), run.quantType());
        try {
            loaded.activations(run.activationType());
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
