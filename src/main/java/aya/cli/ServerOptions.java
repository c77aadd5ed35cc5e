package aya.cli;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.Scheduler;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Options of the commands that run a server (serve, bench-serve): the model, how to run it, how to schedule requests. */
final class ServerOptions {

    @Option(names = "--model", defaultValue = AyaModel.DEFAULT_MODEL, paramLabel = "DIR|REPO",
            description = "Checkpoint directory or Hugging Face repo id (found in the HF cache, else downloaded). Default: ${DEFAULT-VALUE}.")
    String model;

    @Option(names = "--parallel", paramLabel = "N", description = "Sequences decoded together. Default: 4 (bench-serve: the most clients).")
    Integer parallel;

    @Option(names = {"-c", "--context"}, paramLabel = "N",
            description = "Context of each sequence (prompt + reply). Default: max_position_embeddings, at most " + AyaModel.DEFAULT_CONTEXT_CAP + ".")
    Integer context;

    @Option(names = "--queue", defaultValue = "64", paramLabel = "N",
            description = "Requests that may wait for a slot; more get 429. Default: ${DEFAULT-VALUE}.")
    int queue;

    @Option(names = "--cache-ram", defaultValue = "2048", paramLabel = "MiB",
            description = "Memory for cached prompt prefixes, in MiB. Default: ${DEFAULT-VALUE}.")
    long cacheRamMib;

    @Option(names = "--prefill-chunk", defaultValue = "512", paramLabel = "N",
            description = "Prompt tokens processed per step. Default: ${DEFAULT-VALUE}.")
    int prefillChunk;

    @Mixin
    RunOptions run;

    /** One-line errors for values out of range, before anything is loaded. */
    void check() {
        if (parallel != null && (parallel < 1 || parallel > 256)) throw new AyaException("--parallel must be between 1 and 256, got " + parallel);
        if (context != null && context < 1) throw new AyaException("--context must be at least 1, got " + context);
        if (queue < 0) throw new AyaException("--queue must be >= 0, got " + queue);
        if (cacheRamMib < 0 || cacheRamMib > (1L << 30)) throw new AyaException("--cache-ram must be between 0 and 2^30 MiB, got " + cacheRamMib);
        if (prefillChunk < 1) throw new AyaException("--prefill-chunk must be at least 1, got " + prefillChunk);
        run.check();
    }

    AyaModel load() {
        return AyaModel.load(model, run.modelOptions(System.err));
    }

    /** The context of each sequence: --context, else the model's default. */
    int context(AyaModel m) {
        return context != null ? context : m.defaultContext();
    }

    Scheduler.Options scheduler(AyaModel m, int defaultParallel) {
        return new Scheduler.Options(parallel != null ? parallel : defaultParallel, context(m), queue, cacheRamMib << 20, prefillChunk);
    }
}
