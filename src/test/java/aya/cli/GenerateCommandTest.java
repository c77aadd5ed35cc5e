package aya.cli;

import aya.generation.ChatFixture;
import com.fasterxml.jackson.databind.JsonNode;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayInputStream;

import java.io.IOException;
import java.io.InputStream;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.StringJoiner;

import static aya.generation.ChatFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** generate and chat through Main.run on the tiny chat checkpoint, against transformers' greedy outputs. */
class GenerateCommandTest extends CliCapture {

    static final String MODEL = ChatFixture.DIR.toString();
    static final String NL = System.lineSeparator();

    /** Runs the command with the java backend, one thread; asserts exit 0 and returns stdout. */
    String run(String... args) {
        return runOn("java", args);
    }

    String runOn(String backend, String... args) {
        out.reset();
        err.reset();
        List<String> all = new ArrayList<>(Arrays.asList(args));
        all.addAll(List.of("--backend", backend, "--threads", "1"));
        int code = Main.run(all.toArray(String[]::new));
        assertEquals(0, code, stderr());
        return stdout();
    }

    void fails(String expectInMessage, String... args) {
        out.reset();
        err.reset();
        List<String> all = new ArrayList<>(Arrays.asList(args));
        all.addAll(List.of("--backend", "java"));
        int code = Main.run(all.toArray(String[]::new));
        String e = stderr().strip();
        assertEquals(2, code, "exit code for " + all + ": " + e);
        assertTrue(e.startsWith("aya: ") && !e.contains("\n"), "one line: " + e);
        assertTrue(e.contains(expectInMessage), e);
        assertEquals("", stdout(), "nothing printed on a user error");
    }

    static String csv(int[] ids) {
        StringJoiner j = new StringJoiner(",");
        for (int id : ids) j.add(Integer.toString(id));
        return j.toString();
    }

    // ---------------------------------------------------------------------------------------------- generate

    @Test
    void chatModelGetsTheTemplateAndStreamsTheReplyWithoutTheEndToken() {
        JsonNode c = testCase("chat");
        String text = run("generate", "--model", MODEL, "--system", c.get("system").asText(), c.get("user").asText(),
                "--temperature", "0", "-n", "24");
        assertEquals(c.get("text").asText() + NL, text);
        String e = stderr();
        for (String what : new String[] {"prompt: " + c.get("prompt_ids").size() + " tokens", "tok/s", "first token after",
                "generated: " + replyIds(c).length + " tokens", "stop: end_token"}) {
            assertTrue(e.contains(what), what + " in " + e);
        }
    }

    @ParameterizedTest
    @MethodSource("aya.kernels.Backends#available")
    void everyBackendGivesTransformersReplyAndTheSameSeededText(String backend) {
        JsonNode c = testCase("chat");
        assertEquals(c.get("text").asText() + NL, runOn(backend, "generate", "--model", MODEL, "--system",
                c.get("system").asText(), c.get("user").asText(), "--temperature", "0", "-n", "24"));
        String[] sampled = {"generate", "--model", MODEL, "--raw", "Hello", "--temperature", "1.0", "--seed", "5", "-n", "12", "--ignore-eos"};
        assertEquals(runOn(backend, sampled), runOn(backend, sampled));
    }

    @Test
    void withoutSystemAndFromAFile(@TempDir Path tmp) throws IOException {
        JsonNode c = testCase("chat_no_system");
        Path f = tmp.resolve("p.txt");
        Files.writeString(f, c.get("user").asText(), StandardCharsets.UTF_8);
        assertEquals(c.get("text").asText() + NL, run("generate", "--model", MODEL, "--prompt-file", f.toString(),
                "--temperature", "0", "-n", "24"));
    }

    @Test
    void rawSendsTheTextAsHfEncodeDoes() {
        JsonNode c = testCase("raw");
        assertEquals(c.get("text").asText() + NL, run("generate", "--model", MODEL, "--raw", c.get("prompt").asText(),
                "--temperature", "0", "-n", "24"));
    }

    @Test
    void printIdsKeepsTheEnginesContractEndTokenIncluded() {
        JsonNode c = testCase("chat");
        String line = run("generate", "--model", MODEL, "--system", c.get("system").asText(), c.get("user").asText(),
                "--temperature", "0", "-n", "24", "--print-ids");
        assertEquals(csv(ints(c.get("ids"))) + NL, line);
        JsonNode raw = testCase("raw_long");
        assertEquals(csv(ints(raw.get("ids"))) + NL, run("generate", "--model", MODEL, "--ids", csv(ints(raw.get("prompt_ids"))),
                "--temperature", "0", "-n", "40", "--ignore-eos", "--print-ids"));
    }

    @Test
    void stopStringEndsGenerationAndIsNotPrinted() {
        JsonNode c = testCase("raw_long");
        String full = c.get("text").asText();
        String prompt = c.get("prompt").asText();
        assertEquals(full + NL, run("generate", "--model", MODEL, "--raw", prompt, "--temperature", "0", "-n", "40", "--ignore-eos"));
        // stop strings from the middle of the reference text (spanning token boundaries), and one that never occurs
        for (String stop : new String[] {full.substring(8, 12), full.substring(20, 21), "Está"}) {
            String expected = full.substring(0, full.indexOf(stop));
            assertEquals(expected + NL, run("generate", "--model", MODEL, "--raw", prompt, "--temperature", "0", "-n", "40",
                    "--ignore-eos", "--stop", "never-there", "--stop", stop), stop);
            assertTrue(stderr().contains("stop: stop_string"), stderr());
        }
    }

    @Test
    void stopStringsTakeShellFriendlyEscapes() {
        assertEquals("a\nb\\c\\q\t", GenerationOptions.unescape("a\\nb\\\\c\\q\\t"));
        assertEquals("end\\", GenerationOptions.unescape("end\\"), "a trailing backslash stays");
    }

    @Test
    void sameSeedSameTextOtherSeedOtherText() {
        String[] args = {"generate", "--model", MODEL, "--raw", "Hello", "--temperature", "1.5", "--top-k", "0", "--top-p", "1",
                "--min-p", "0", "-n", "20", "--ignore-eos"};
        String a = run(concat(args, "--seed", "42"));
        String b = run(concat(args, "--seed", "42"));
        String other = run(concat(args, "--seed", "43"));
        assertEquals(a, b);
        assertNotEquals(a, other);
    }

    @Test
    void reachingTheContextEndStopsWithAMessage() {
        JsonNode c = testCase("raw_long");
        int promptLength = c.get("prompt_ids").size();
        String text = run("generate", "--model", MODEL, "--ids", csv(ints(c.get("prompt_ids"))), "--context",
                Integer.toString(promptLength + 4), "--temperature", "0", "-n", "40", "--ignore-eos", "--print-ids");
        assertEquals(csv(Arrays.copyOf(ints(c.get("ids")), 5)) + NL, text);
        run("generate", "--model", MODEL, "--raw", c.get("prompt").asText(), "--context", Integer.toString(promptLength + 4),
                "--temperature", "0", "--ignore-eos");
        assertTrue(stderr().contains("context of " + (promptLength + 4) + " tokens is full"), stderr());
    }

    @Test
    void userErrorsAreOneLineWithExitCode2(@TempDir Path tmp) throws IOException {
        fails("context of 10", "generate", "--model", MODEL, "a long enough prompt to exceed ten tokens of context", "--context", "10");
        fails("max_position_embeddings", "generate", "--model", MODEL, "hi", "--context", "100000");
        fails("no prompt", "generate", "--model", MODEL);
        fails("once", "generate", "--model", MODEL, "hi", "--ids", "2,5");
        fails("no such file", "generate", "--model", MODEL, "--prompt-file", tmp.resolve("missing.txt").toString());
        Path bad = tmp.resolve("bad.txt");
        Files.write(bad, new byte[] {'h', 'i', (byte) 0xC3, '!'});
        fails("not valid UTF-8", "generate", "--model", MODEL, "--prompt-file", bad.toString());
        fails("--system", "generate", "--model", MODEL, "--raw", "--system", "be nice", "hi");
        fails("not found", "generate", "--model", tmp.resolve("nope").toString(), "hi");
        fails("top-p", "generate", "--model", MODEL, "hi", "--top-p", "2");
        fails("stop", "generate", "--model", MODEL, "hi", "--stop", "");
        fails("tokenizer.json", "generate", "--model", "src/test/resources/model/f32-tied", "hi");
        // with a fixed --context, a prompt that cannot fit is refused before the weights are read: here there are none
        Path noWeights = copyChatFixture(tmp.resolve("no-weights"));
        Files.delete(noWeights.resolve("model.safetensors"));
        fails("the prompt has", "generate", "--model", noWeights.toString(), "a long enough prompt to exceed ten tokens of context",
                "--context", "10");
        fails("the prompt has 5 tokens, more than the context of 3", "generate", "--model", noWeights.toString(),
                "--ids", "1,2,3,4,5", "--context", "3");
        fails("model.safetensors", "generate", "--model", noWeights.toString(), "hi", "--context", "100"); // fits: then loads
        // a checkpoint without a chat template runs raw, and refuses --system
        Path base = copyChatFixture(tmp.resolve("base"));
        Files.delete(base.resolve("chat_template.jinja"));
        fails("no chat template", "generate", "--model", base.toString(), "--system", "x", "hi");
        JsonNode c = testCase("raw");
        assertEquals(c.get("text").asText() + NL, run("generate", "--model", base.toString(), c.get("prompt").asText(),
                "--temperature", "0", "-n", "24"));
    }

    // ---------------------------------------------------------------------------------------------- chat

    String chat(String input, String... args) {
        System.setIn(new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)));
        return run(concat(new String[] {"chat", "--model", MODEL, "--temperature", "0", "-n", "24"}, args));
    }

    @Test
    void chatOverAPipeAnswersEachLineReusingTheCacheAndExitsAtEof() {
        JsonNode c1 = testCase("chat"), c2 = testCase("chat_turn2");
        String replies = chat(c1.get("user").asText() + "\n" + c2.get("user").asText() + "\n", "--system", c1.get("system").asText());
        assertEquals(c1.get("text").asText() + NL + c2.get("text").asText() + NL, replies, "no '> ' prompt when stdin is a pipe");
    }

    @Test
    void chatResetAndExit() {
        JsonNode c = testCase("chat_no_system");
        String u = c.get("user").asText();
        assertEquals(c.get("text").asText() + NL + c.get("text").asText() + NL,
                chat(u + "\n\n/reset\n" + u + "\n/exit\nnot read\n"));
        assertEquals("", chat(""), "empty input: nothing, exit 0");
    }

    @Test
    void chatRejectsInvalidUtf8Input() {
        System.setIn(new ByteArrayInputStream(new byte[] {'h', 'i', (byte) 0xFF, '\n'}));
        fails("not valid UTF-8", "chat", "--model", MODEL, "--threads", "1");
    }

    @Test
    void chatNeedsAChatTemplate(@TempDir Path tmp) throws IOException {
        Path base = copyChatFixture(tmp.resolve("base"));
        Files.delete(base.resolve("chat_template.jinja"));
        System.setIn(new ByteArrayInputStream("hi\n".getBytes(StandardCharsets.UTF_8)));
        fails("no chat template", "chat", "--model", base.toString());
    }

    static Path copyChatFixture(Path to) throws IOException {
        Files.createDirectories(to);
        try (var files = Files.list(ChatFixture.DIR)) {
            for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    static String[] concat(String[] a, String... b) {
        String[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
