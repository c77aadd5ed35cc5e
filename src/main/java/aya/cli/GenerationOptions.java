package aya.cli;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.GenerationSettings;
import aya.sampling.SamplerSettings;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;

/**
 * Options of the commands that generate text (generate, chat): which model and how to run it, and llama.cpp-style
 * sampling flags. A sampling flag not given comes from the model's generation_config.json, else llama.cpp's default.
 */
final class GenerationOptions {

    @Option(names = "--model", defaultValue = AyaModel.DEFAULT_MODEL, paramLabel = "DIR|REPO",
            description = "Checkpoint directory or Hugging Face repo id (found in the HF cache, else downloaded). Default: ${DEFAULT-VALUE}.")
    String model;

    @Mixin
    RunOptions run;

    @Option(names = {"-c", "--context"}, paramLabel = "N",
            description = "Context length in tokens (prompt + reply). Default: max_position_embeddings, at most " + AyaModel.DEFAULT_CONTEXT_CAP + ".")
    Integer context;

    @Option(names = "--temperature", paramLabel = "T", description = "0 = greedy. Default: generation_config.json, else 0.8.")
    Float temperature;

    @Option(names = "--top-k", paramLabel = "K", description = "Keep the K most likely tokens (0 = off). Default: generation_config.json, else 40.")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "Nucleus sampling (1 = off). Default: generation_config.json, else 0.95.")
    Float topP;

    @Option(names = "--min-p", paramLabel = "P", description = "Drop tokens below P x the top probability (0 = off). Default: generation_config.json, else 0.05.")
    Float minP;

    @Option(names = "--repeat-penalty", paramLabel = "X", description = "Penalty on recent tokens (1 = off). Default: generation_config.json, else 1.0.")
    Float repeatPenalty;

    @Option(names = "--repeat-last-n", paramLabel = "N", description = "Tokens the penalty looks back (0 = off, -1 = context). Default: 64.")
    Integer repeatLastN;

    @Option(names = {"-s", "--seed"}, paramLabel = "N", description = "Random seed (default: random). Same seed, same text on the same backend.")
    Long seed;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N",
            description = "Tokens to generate at most (-1 = until an end token or the context is full). Default: -1 (32 with generate --ids).")
    Integer maxTokens;

    @Option(names = "--stop", paramLabel = "TEXT",
            description = "Stop when the text contains TEXT (not printed). Repeatable. \\n, \\t, \\r and \\\\ are escapes.")
    List<String> stops = new ArrayList<>();

    @Option(names = "--ignore-eos", description = "Do not stop at end tokens.")
    boolean ignoreEos;

    AyaModel load() {
        return load((tokenizer, template) -> { });
    }

    /** Loads the model, running {@code check} once the tokenizer is read and before the weights are mapped. */
    AyaModel load(AyaModel.BeforeWeights check) {
        if (context != null && context < 1) {
            throw new AyaException("--context must be at least 1, got " + context);
        }
        return AyaModel.load(model, run.modelOptions(System.err), check);
    }

    /** The context to use: --context, else the model's default. */
    int context(AyaModel m) {
        return context != null ? context : m.defaultContext();
    }

    SamplerSettings.Overrides overrides(long seedOffset) {
        return new SamplerSettings.Overrides(temperature, topK, topP, minP, repeatPenalty, repeatLastN,
                seed == null ? null : seed + seedOffset);
    }

    /** Settings for one generation; {@code defaultMax} is used when --max-tokens is absent (-1 = unlimited). */
    GenerationSettings settings(AyaModel m, int contextLength, long seedOffset, int defaultMax) {
        int max = maxTokens == null ? defaultMax : maxTokens;
        if (max < -1) throw new AyaException("--max-tokens must be >= 0, or -1 for no limit; got " + max);
        List<String> texts = new ArrayList<>();
        for (String s : stops) {
            if (s.isEmpty()) throw new AyaException("--stop needs a non-empty text");
            texts.add(unescape(s));
        }
        // -1: the context is the limit (generation stops there with a message)
        return new GenerationSettings(m.samplerSettings(overrides(seedOffset)), max == -1 ? contextLength : max, texts, ignoreEos);
    }

    /** Shell-friendly escapes in --stop, as llama.cpp processes them: \n, \t, \r, \\ (others stay as typed). */
    static String unescape(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char e = s.charAt(i + 1);
                String r = switch (e) {
                    case 'n' -> "\n";
                    case 't' -> "\t";
                    case 'r' -> "\r";
                    case '\\' -> "\\";
                    default -> null;
                };
                if (r != null) {
                    out.append(r);
                    i++;
                    continue;
                }
            }
            out.append(c);
        }
        return out.toString();
    }
}
