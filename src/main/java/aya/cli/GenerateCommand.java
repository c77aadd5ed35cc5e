package aya.cli;

import aya.AyaException;
import aya.config.GenerationConfig;
import aya.model.AyaForward;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.StringJoiner;
import java.util.concurrent.Callable;

/** {@code aya generate}: continue a prompt of token ids (greedy for now). */
@Command(name = "generate", description = "Continue a prompt given as token ids (greedy decoding).")
public final class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions options;

    @Option(names = "--ids", required = true, paramLabel = "IDS", description = "Comma-separated prompt token ids.")
    String ids;

    @Option(names = "--max-tokens", defaultValue = "32", paramLabel = "N", description = "Tokens to generate at most. Default: ${DEFAULT-VALUE}.")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "0 = greedy (the only mode so far).")
    double temperature;

    @Option(names = "--print-ids", description = "Print the generated ids as one comma-separated line.")
    boolean printIds;

    @Option(names = "--ignore-eos", description = "Do not stop at the end-of-sequence ids of generation_config.json.")
    boolean ignoreEos;

    @Option(names = "--stats", description = "Print prefill and decode speed to stderr.")
    boolean stats;

    @Override
    public Integer call() {
        int[] prompt = ModelOptions.parseIds(ids);
        if (maxTokens < 0) {
            throw new AyaException("--max-tokens must be >= 0, got " + maxTokens);
        }
        if (temperature != 0) {
            throw new AyaException("--temperature " + temperature + ": only 0 (greedy) is supported so far");
        }
        int context = options.contextFor(prompt.length + maxTokens);
        StringJoiner line = new StringJoiner(",");
        try (AyaForward model = options.load();
             AyaForward.State state = model.newState(context)) {
            if (prompt.length + maxTokens > state.context()) {
                throw new AyaException((prompt.length + maxTokens) + " tokens (prompt + --max-tokens) do not fit the context of "
                        + state.context() + " (max_position_embeddings " + model.config().maxPositionEmbeddings() + ")");
            }
            GenerationConfig gen = GenerationConfig.load(options.model, model.config());
            int vocab = model.config().vocabSize();
            long t0 = System.nanoTime(), t1 = t0;
            int decoded = 0;
            if (maxTokens > 0) {
                MemorySegment logits = model.forward(state, prompt);
                t1 = System.nanoTime();
                for (int n = 0; n < maxTokens; n++) {
                    int next = argmax(logits, vocab);
                    line.add(Integer.toString(next));
                    if (!ignoreEos && gen.isEos(next)) {
                        break;
                    }
                    if (n + 1 < maxTokens) {
                        logits = model.forward(state, new int[] {next});
                        decoded++;
                    }
                }
            }
            if (stats) {
                long t2 = System.nanoTime();
                System.err.printf("aya: %s, %d threads; prefill %d tokens in %.2f s (%.1f tok/s); decode %d tokens in %.2f s (%.2f tok/s)%n",
                        model.kernels().name(), model.threads(), prompt.length, (t1 - t0) / 1e9, prompt.length / ((t1 - t0) / 1e9),
                        decoded, (t2 - t1) / 1e9, decoded / Math.max(1e-9, (t2 - t1) / 1e9));
            }
        }
        // Without a tokenizer (a later task adds text), ids are the only output; --print-ids keeps it one line.
        System.out.println(line);
        System.out.flush();
        return 0;
    }

    /** Index of the largest logit; the first one on ties, like torch.argmax. */
    static int argmax(MemorySegment logits, int n) {
        int best = 0;
        float max = logits.getAtIndex(ValueLayout.JAVA_FLOAT, 0);
        for (int i = 1; i < n; i++) {
            float v = logits.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            if (v > max) {
                max = v;
                best = i;
            }
        }
        return best;
    }
}
