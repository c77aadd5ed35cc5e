package aya.cli;

import aya.AyaException;
import aya.generation.AyaModel;
import aya.generation.GenerationResult;
import aya.generation.GenerationSettings;
import aya.generation.Session;
import aya.generation.StopReason;
import aya.tokenizer.ChatTemplate;
import aya.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.StringJoiner;
import java.util.concurrent.Callable;

/**
 * {@code aya generate}: continue a prompt and stream the text to stdout. Chat models get their chat template
 * (the prompt is the user's message) unless {@code --raw}; {@code --ids} takes token ids and {@code --print-ids}
 * prints ids instead of text (the engine's contract: one line, including the end token that stopped it).
 */
@Command(name = "generate", sortOptions = false, mixinStandardHelpOptions = true,
        description = "Generate text from a prompt (streamed to stdout; timings on stderr).")
public final class GenerateCommand implements Callable<Integer> {

    @Parameters(arity = "0..1", paramLabel = "PROMPT", description = "The prompt (or use --prompt-file / --ids).")
    String prompt;

    @Option(names = {"-f", "--prompt-file"}, paramLabel = "FILE", description = "Read the prompt from a UTF-8 file.")
    Path promptFile;

    @Option(names = "--system", paramLabel = "TEXT", description = "System message (chat template only).")
    String system;

    @Option(names = "--raw", description = "Send the prompt as is (with the tokenizer's BOS), without the chat template.")
    boolean raw;

    @Option(names = "--ids", paramLabel = "IDS", description = "Comma-separated prompt token ids instead of text.")
    String ids;

    @Option(names = "--print-ids", description = "Print the generated ids as one comma-separated line (the end token that stopped it included) instead of text.")
    boolean printIds;

    @Option(names = "--stats", description = "With --print-ids: print the timings to stderr too (text mode always does).")
    boolean stats;

    @Mixin
    GenerationOptions options;

    /** --max-tokens when absent with --ids (the engine's original default). */
    static final int IDS_DEFAULT_MAX_TOKENS = 32;

    @Override
    public Integer call() {
        int given = (prompt != null ? 1 : 0) + (promptFile != null ? 1 : 0) + (ids != null ? 1 : 0);
        if (given != 1) {
            throw new AyaException(given == 0 ? "no prompt: give it as an argument, with --prompt-file FILE, or as --ids"
                    : "give the prompt once: as an argument, --prompt-file or --ids");
        }
        if (ids != null && (system != null || raw)) throw new AyaException("--ids is a raw prompt: --system and --raw do not apply");
        int[] promptIds = ids != null ? ModelOptions.parseIds(ids) : null;
        String text = promptFile != null ? readPrompt(promptFile) : prompt;
        if (promptIds == null && text.isEmpty()) throw new AyaException("the prompt is empty");

        // With a fixed --context, a prompt that cannot fit is refused before the weights are mapped.
        int[][] early = {promptIds};
        try (AyaModel model = options.load((tokenizer, template) -> {
            if (options.context == null) return;
            if (early[0] == null && tokenizer != null) early[0] = encode(tokenizer, template, text, options.model);
            if (early[0] != null) checkFits(early[0].length, options.context);
        })) {
            promptIds = early[0];
            if (promptIds == null) {
                if (!model.hasTokenizer()) throw new AyaException(model.directory() + " has no tokenizer.json: give the prompt as --ids");
                promptIds = encode(model.tokenizer(), model.chatTemplate(), text, model.directory().toString());
            }
            int context;
            if (ids != null && options.context == null) {
                // as before the text mode existed: a context just big enough for prompt + --max-tokens
                int max = options.maxTokens == null ? IDS_DEFAULT_MAX_TOKENS : options.maxTokens;
                context = (int) Math.min((long) promptIds.length + Math.max(max, 0), Integer.MAX_VALUE);
                if (max < 0 || context > model.config().maxPositionEmbeddings()) {
                    throw new AyaException((max < 0 ? "--max-tokens -1 needs --context" : context
                            + " tokens (prompt + --max-tokens) do not fit the context of max_position_embeddings "
                            + model.config().maxPositionEmbeddings()));
                }
            } else {
                context = options.context(model);
            }
            if (!printIds && !model.hasTokenizer()) {
                throw new AyaException(model.directory() + " has no tokenizer.json: text cannot be printed, use --print-ids");
            }
            GenerationSettings settings = options.settings(model, context, 0,
                    ids != null ? IDS_DEFAULT_MAX_TOKENS : -1);
            checkFits(promptIds.length, context);
            PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
            GenerationResult r;
            try (Session session = model.newSession(context)) {
                Session.Generation g = session.start(promptIds, settings);
                while (g.hasNext()) {
                    String piece = g.next().text();
                    if (!printIds && !piece.isEmpty()) {
                        out.print(piece);
                        out.flush(); // each token as it is made
                        if (out.checkError()) return 0; // stdout closed (e.g. | head): nobody reads the rest
                    }
                }
                r = g.result();
            }
            if (printIds) {
                StringJoiner line = new StringJoiner(",");
                for (int id : r.ids()) line.add(Integer.toString(id));
                if (r.endToken() >= 0) line.add(Integer.toString(r.endToken()));
                out.println(line);
                out.flush();
                if (stats) printTimings(model, r);
                return 0;
            }
            out.println();
            out.flush();
            if (r.stopReason() == StopReason.CONTEXT_FULL) {
                System.err.println("aya: stopped: the context of " + context + " tokens is full (raise --context)");
            }
            printTimings(model, r);
            return 0;
        }
    }

    private static void printTimings(AyaModel model, GenerationResult r) {
        System.err.println("aya: " + model.backendName() + " backend, " + model.threads() + " threads");
        r.timings().lines().forEach(l -> System.err.println("aya: " + l));
    }

    private static void checkFits(int promptTokens, int context) {
        if (promptTokens > context) {
            throw new AyaException("the prompt has " + promptTokens + " tokens, more than the context of "
                    + context + " (raise --context or shorten the prompt)");
        }
    }

    /** The prompt's ids: through the chat template for chat models, else (or with --raw) as HF encode gives them. */
    private int[] encode(Tokenizer tokenizer, Optional<ChatTemplate> template, String text, String modelName) {
        if (raw || template.isEmpty()) {
            if (system != null) {
                throw new AyaException(raw ? "--system needs the chat template: drop --raw"
                        : modelName + " has no chat template (a base model): --system cannot be used");
            }
            return tokenizer.encode(text, true);
        }
        List<ChatTemplate.Message> messages = new ArrayList<>();
        if (system != null) messages.add(new ChatTemplate.Message("system", system));
        messages.add(new ChatTemplate.Message("user", text));
        return template.get().encodeChat(messages, true);
    }

    /** A prompt file as strict UTF-8 (a bad byte is an error, not a replacement character). */
    static String readPrompt(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new AyaException("--prompt-file " + file + ": no such file");
        } catch (IOException e) {
            throw new AyaException("--prompt-file " + file + ": cannot read: " + e.getMessage());
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new AyaException("--prompt-file " + file + ": not valid UTF-8");
        }
    }
}
