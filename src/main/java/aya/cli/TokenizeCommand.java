package aya.cli;

import aya.AyaException;
import aya.config.GgufMetadata;
import aya.tokenizer.ChatTemplate;
import aya.tokenizer.GgufTokenizer;
import aya.weights.GgufFile;
import aya.tokenizer.Tokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code aya tokenize}: text to ids and back with a tokenizer.json, exactly like HF tokenizers; also the ids of a
 * rendered chat prompt, and a one-thread encoding benchmark.
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Encode text to token ids (or decode ids) with a Hugging Face tokenizer.json.",
                "Examples:",
                "  aya tokenize --model DIR \"Hello world\"",
                "  printf '\"Hello\"\\n' | aya tokenize --tokenizer tokenizer.json --jsonl",
                "  printf '[2, 15]\\n' | aya tokenize --tokenizer tokenizer.json --jsonl --decode",
                "  aya tokenize --model DIR --chat messages.json"})
public final class TokenizeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "The tokenizer.json file.")
    Path tokenizerFile;

    @Option(names = "--model", paramLabel = "DIR|FILE.gguf", description = "A model directory (uses DIR/tokenizer.json and its chat "
            + "template), or a GGUF file (its tokenizer and chat template).")
    Path modelDir;

    @Option(names = "--jsonl", description = "Read stdin: one JSON string (or, with --decode, one JSON array of ids) per line; "
            + "write one JSON result per line.")
    boolean jsonl;

    @Option(names = "--no-add-special-tokens", description = "Do not run the post-processor (no BOS etc.).")
    boolean noSpecialTokens;

    @Option(names = "--decode", description = "Decode ids to text (special tokens kept).")
    boolean decode;

    @Option(names = "--chat", paramLabel = "FILE", description = "Print the ids of the chat prompt for the JSON array of "
            + "{role, content} messages in FILE, with the generation prompt.")
    Path chatFile;

    @Option(names = "--bench", paramLabel = "FILE", description = "Benchmark: encode every line of FILE on one thread and report MB/s.")
    Path benchFile;

    @Option(names = "--repeat", defaultValue = "5", description = "Benchmark passes over the corpus (default ${DEFAULT-VALUE}).")
    int repeat;

    @Parameters(arity = "0..1", paramLabel = "TEXT", description = "Text to encode (or ids to decode, e.g. \"2,15,7\"); "
            + "read from stdin when absent.")
    String text;

    @Override
    public Integer call() throws IOException {
        GgufMetadata gguf = ggufMetadata();
        Tokenizer tokenizer = gguf != null ? GgufTokenizer.tokenizer(gguf) : Tokenizer.load(tokenizerPath());
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, StandardCharsets.UTF_8);
        try {
            if (benchFile != null) bench(tokenizer, out);
            else if (chatFile != null) chat(tokenizer, gguf, out);
            else if (jsonl) jsonLines(tokenizer, out);
            else if (decode) out.println(tokenizer.decode(parseIds(text != null ? text : readStdinText())));
            else listing(tokenizer, text != null ? text : readStdinText(), out);
        } finally {
            out.flush();
        }
        return 0;
    }

    /** The metadata when --model names a GGUF file, else null. */
    private GgufMetadata ggufMetadata() {
        if (modelDir == null || !GgufFile.looksLikeGguf(modelDir)) return null;
        if (tokenizerFile != null) throw new AyaException("give --tokenizer or --model, not both");
        return new GgufMetadata(modelDir.toString(), GgufFile.readMetadata(modelDir));
    }

    private Path tokenizerPath() {
        if (tokenizerFile != null && modelDir != null) throw new AyaException("give --tokenizer or --model, not both");
        if (tokenizerFile != null) return tokenizerFile;
        if (modelDir != null) {
            if (!Files.isDirectory(modelDir)) throw new AyaException(modelDir + ": no such directory or GGUF file");
            return modelDir.resolve("tokenizer.json");
        }
        throw new AyaException("no tokenizer: give --tokenizer FILE or --model DIR");
    }

    private void chat(Tokenizer tokenizer, GgufMetadata gguf, PrintStream out) throws IOException {
        Path dir = modelDir != null ? modelDir : tokenizerFile.toAbsolutePath().getParent();
        ChatTemplate template = (gguf != null ? GgufTokenizer.chatTemplate(gguf, tokenizer) : ChatTemplate.load(dir, tokenizer))
                .orElseThrow(() -> new AyaException(dir + ": the model has no chat template (no chat_template in tokenizer_config.json,"
                        + " no chat_template.jinja, no tokenizer.chat_template in a GGUF)"));
        List<ChatTemplate.Message> messages = ChatTemplate.readMessages(chatFile);
        out.println(idsJson(template.encodeChat(messages, true)));
    }

    /** One JSON value per stdin line; a bad line stops with an error naming its number (earlier output is kept). */
    private void jsonLines(Tokenizer tokenizer, PrintStream out) throws IOException {
        byte[] all = System.in.readAllBytes();
        int lineNo = 0;
        int start = 0;
        while (start < all.length) {
            int end = start;
            while (end < all.length && all[end] != '\n') end++;
            lineNo++;
            String line = strictUtf8(all, start, end, "stdin line " + lineNo);
            start = end + 1;
            if (line.isBlank()) continue;
            JsonNode node;
            try {
                node = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                throw new AyaException("stdin line " + lineNo + ": not valid JSON: " + e.getOriginalMessage().lines().findFirst().orElse(""));
            }
            if (decode) {
                int[] ids = idsOf(node, "stdin line " + lineNo);
                try {
                    out.println(JSON.writeValueAsString(tokenizer.decode(ids)));
                } catch (AyaException e) {
                    throw new AyaException("stdin line " + lineNo + ": " + e.getMessage());
                }
            } else {
                if (!node.isTextual()) throw new AyaException("stdin line " + lineNo + ": expected a JSON string, got " + node.getNodeType());
                String s = node.asText();
                checkSurrogates(s, "stdin line " + lineNo);
                out.println(idsJson(tokenizer.encode(s, !noSpecialTokens)));
            }
        }
    }

    private void listing(Tokenizer tokenizer, String s, PrintStream out) throws JsonProcessingException {
        int[] ids = tokenizer.encode(s, !noSpecialTokens);
        out.println(idsJson(ids));
        for (int id : ids) {
            out.printf("%8d  %s%s%n", id, JSON.writeValueAsString(tokenizer.token(id)), tokenizer.isSpecial(id) ? "  (special)" : "");
        }
        out.println(ids.length + " tokens");
    }

    private void bench(Tokenizer tokenizer, PrintStream out) throws IOException {
        List<String> lines = new ArrayList<>();
        long bytes = 0;
        for (String line : Files.readAllLines(benchFile, StandardCharsets.UTF_8)) {
            lines.add(line);
            bytes += line.getBytes(StandardCharsets.UTF_8).length;
        }
        long tokens = 0;
        for (String line : lines) tokens += tokenizer.encode(line, false).length;  // warm-up pass (JIT, BPE cache)
        out.printf("corpus: %d lines, %.2f MB, %d tokens%n", lines.size(), bytes / 1e6, tokens);
        for (int pass = 1; pass <= repeat; pass++) {
            long t0 = System.nanoTime();
            long n = 0;
            for (String line : lines) n += tokenizer.encode(line, false).length;
            double s = (System.nanoTime() - t0) / 1e9;
            out.printf("pass %d: %.3f s, %.2f MB/s, %.0f tokens/s%n", pass, s, bytes / 1e6 / s, n / s);
            out.flush();
        }
    }

    private static String readStdinText() throws IOException {
        byte[] all = System.in.readAllBytes();
        return strictUtf8(all, 0, all.length, "stdin");
    }

    private static String strictUtf8(byte[] b, int from, int to, String where) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(b, from, to - from)).toString();
        } catch (CharacterCodingException e) {
            throw new AyaException(where + ": invalid UTF-8");
        }
    }

    private static void checkSurrogates(String s, String where) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new AyaException(where + ": string contains an unpaired surrogate \\u" + Integer.toHexString(c));
            }
        }
    }

    private static int[] idsOf(JsonNode node, String where) {
        if (!node.isArray()) throw new AyaException(where + ": expected a JSON array of ids, got " + node.getNodeType());
        int[] ids = new int[node.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode v = node.get(i);
            if (!v.canConvertToInt() || !v.isIntegralNumber()) throw new AyaException(where + ": id #" + i + " is not an integer: " + v);
            ids[i] = v.asInt();
        }
        return ids;
    }

    /** "2,15,7", "2 15 7" or "[2, 15, 7]". */
    static int[] parseIds(String s) {
        String body = s.strip();
        if (body.startsWith("[") && body.endsWith("]")) body = body.substring(1, body.length() - 1);
        if (body.isBlank()) return new int[0];
        String[] parts = body.strip().split("[\\s,]+");
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                throw new AyaException("not a token id: '" + parts[i] + "'");
            }
        }
        return ids;
    }

    static String idsJson(int[] ids) {
        StringBuilder sb = new StringBuilder(ids.length * 6 + 2).append('[');
        for (int i = 0; i < ids.length; i++) {
            if (i > 0) sb.append(", ");
            sb.append(ids[i]);
        }
        return sb.append(']').toString();
    }
}
