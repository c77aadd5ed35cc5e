package aya.cli;

import aya.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The `aya tokenize` contract: JSONL in/out, decode, chat, and one-line errors with exit code 2. */
class TokenizeCommandTest {
    private static final Path AYA = Path.of("src/test/resources/tokenizer/aya");

    record Result(int exit, String out, String err) {
    }

    static synchronized Result run(byte[] stdin, String... args) {
        InputStream oldIn = System.in;
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setIn(new ByteArrayInputStream(stdin));
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int exit = Main.run(args);
            return new Result(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setIn(oldIn);
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    static Result run(String stdin, String... args) {
        return run(stdin.getBytes(StandardCharsets.UTF_8), args);
    }

    @Test
    void jsonlEncodesOneLinePerInputInOrder() {
        Tokenizer tok = Tokenizer.load(AYA.resolve("tokenizer.json"));
        Result r = run("\"Hello wörld\"\n\"\"\n\"emoji 👋🏽 \\n newline\"\n", "tokenize", "--model", AYA.toString(), "--jsonl");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().split("\n");
        assertEquals(3, lines.length);
        assertEquals(TokenizeCommand.idsJson(tok.encode("Hello wörld", true)), lines[0]);
        assertEquals(TokenizeCommand.idsJson(tok.encode("", true)), lines[1]);
        assertEquals(TokenizeCommand.idsJson(tok.encode("emoji 👋🏽 \n newline", true)), lines[2]);
        Result plain = run("\"Hello\"\n", "tokenize", "--tokenizer", AYA.resolve("tokenizer.json").toString(), "--jsonl", "--no-add-special-tokens");
        assertEquals(TokenizeCommand.idsJson(tok.encode("Hello", false)) + "\n", plain.out());
    }

    @Test
    void jsonlDecodeKeepsSpecialTokensAndWritesUtf8Json() {
        Tokenizer tok = Tokenizer.load(AYA.resolve("tokenizer.json"));
        int[] ids = tok.encode("Grüße 👋 \"quoted\"\n", true);
        Result r = run(TokenizeCommand.idsJson(ids) + "\n[]\n", "tokenize", "--model", AYA.toString(), "--jsonl", "--decode");
        assertEquals(0, r.exit(), r.err());
        assertEquals("\"<BOS_TOKEN>Grüße 👋 \\\"quoted\\\"\\n\"\n\"\"\n", r.out());
    }

    @Test
    void chatPrintsPromptIds(@TempDir Path tmp) throws Exception {
        Path messages = tmp.resolve("m.json");
        Files.writeString(messages, "[{\"role\": \"user\", \"content\": \"Hi!\"}]");
        Result r = run("", "tokenize", "--model", AYA.toString(), "--chat", messages.toString());
        assertEquals(0, r.exit(), r.err());
        Tokenizer tok = Tokenizer.load(AYA.resolve("tokenizer.json"));
        assertTrue(r.out().startsWith("[" + tok.tokenId("<BOS_TOKEN>") + ", "), r.out());
        assertTrue(r.out().strip().endsWith(tok.tokenId("<|START_RESPONSE|>") + "]"), r.out());
    }

    @Test
    void badInputsGiveOneLineErrorsAndExitTwo(@TempDir Path tmp) throws Exception {
        String tokenizer = AYA.resolve("tokenizer.json").toString();
        byte[] invalidUtf8 = {'"', 'o', 'k', '"', '\n', '"', (byte) 0xC3, '"', '\n'};
        Result r = run(invalidUtf8, "tokenize", "--tokenizer", tokenizer, "--jsonl");
        assertEquals(2, r.exit());
        assertEquals("aya: stdin line 2: invalid UTF-8\n", r.err());
        assertEquals(1, r.out().split("\n").length, "the valid line before the bad one was answered");

        r = run("[1, 999999]\n", "tokenize", "--tokenizer", tokenizer, "--jsonl", "--decode");
        assertEquals(2, r.exit());
        assertTrue(r.err().startsWith("aya: stdin line 1: token id 999999 is out of range"), r.err());

        r = run("42\n", "tokenize", "--tokenizer", tokenizer, "--jsonl");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("stdin line 1: expected a JSON string"), r.err());

        r = run("\"\\ud800\"\n", "tokenize", "--tokenizer", tokenizer, "--jsonl");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("unpaired surrogate"), r.err());

        Path broken = tmp.resolve("tokenizer.json");
        Files.writeString(broken, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}");
        r = run("", "tokenize", "--tokenizer", broken.toString(), "x");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("merge #0 'a b' uses a token missing from the vocab"), r.err());
        assertEquals(1, r.err().strip().split("\n").length, r.err());

        Files.writeString(broken, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
        r = run("", "tokenize", "--tokenizer", broken.toString(), "x");
        assertTrue(r.err().contains("unsupported model type 'Unigram'"), r.err());

        Files.writeString(broken, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Fancy\"}}");
        r = run("", "tokenize", "--tokenizer", broken.toString(), "x");
        assertTrue(r.err().contains("unsupported pre_tokenizer type 'Fancy'"), r.err());

        Files.writeString(broken, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"pre_tokenizer\": "
                + "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}}");
        r = run("", "tokenize", "--tokenizer", broken.toString(), "x");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("cannot translate regex '(unclosed'"), r.err());

        Files.writeString(broken, "{\"model\": ");
        r = run("", "tokenize", "--tokenizer", broken.toString(), "x");
        assertTrue(r.err().startsWith("aya: " + broken + ": malformed JSON"), r.err());

        Path noTemplate = Path.of("src/test/resources/tokenizer/cohere_old");
        Path messages = tmp.resolve("m.json");
        Files.writeString(messages, "[{\"role\": \"user\", \"content\": \"Hi\"}]");
        r = run("", "tokenize", "--model", noTemplate.toString(), "--chat", messages.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("has no chat template"), r.err());

        Files.writeString(messages, "{\"role\": \"user\"}");
        r = run("", "tokenize", "--model", AYA.toString(), "--chat", messages.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("expected a JSON array"), r.err());
    }
}
