package aya.cli;

import aya.AyaException;
import aya.model.AyaForward;
import aya.weights.Npy;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/** {@code aya logits}: the logits at every input position, as a float32 .npy [T, V], for parity checks. */
@Command(name = "logits", mixinStandardHelpOptions = true, description = "Write the logits at every input position to a float32 .npy [T, vocab_size].")
public final class LogitsCommand implements Callable<Integer> {

    @Mixin
    ModelOptions options;

    @Option(names = "--ids", required = true, paramLabel = "IDS", description = "Comma-separated input token ids.")
    String ids;

    @Option(names = "--output", required = true, paramLabel = "FILE.npy", description = "Output file (written atomically).")
    Path output;

    @Option(names = "--chunk", paramLabel = "N",
            description = "Feed the ids N at a time through the KV cache (1 = token-by-token decode). Default: all at once.")
    Integer chunk;

    @Override
    public Integer call() {
        int[] tokens = ModelOptions.parseIds(ids);
        if (chunk != null && chunk < 1) {
            throw new AyaException("--chunk must be at least 1, got " + chunk);
        }
        int context = options.contextFor(tokens.length);
        int block = chunk == null ? AyaForward.DEFAULT_MAX_BLOCK : Math.min(chunk, AyaForward.DEFAULT_MAX_BLOCK);
        int step = chunk == null ? tokens.length : chunk;
        try (AyaForward model = options.load();
             AyaForward.State state = model.newState(context, block)) {
            if (tokens.length > state.context()) {
                throw new AyaException(tokens.length + " tokens do not fit the context of " + state.context()
                        + " (max_position_embeddings " + model.config().maxPositionEmbeddings() + ")");
            }
            int vocab = model.config().vocabSize();
            for (int id : tokens) {
                if (id >= vocab) {
                    throw new AyaException("--ids: token id " + id + " is out of range: vocab_size is " + vocab);
                }
            }
            try (Npy.Writer out = new Npy.Writer(output, tokens.length, vocab)) {
                for (int start = 0; start < tokens.length; start += step) {
                    int[] piece = Arrays.copyOfRange(tokens, start, Math.min(tokens.length, start + step));
                    model.forwardAll(state, piece, (i, row) -> out.writeRow(row));
                }
                out.commit();
            }
        }
        return 0;
    }
}
