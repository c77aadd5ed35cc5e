package aya.cli;

import aya.generation.AyaModel;
import aya.generation.ChatFixture;
import aya.generation.GenerationSettings;
import aya.generation.Session;
import aya.kernels.Backends;
import aya.sampling.SamplerSettings;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.StringJoiner;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ctrl-C on a real process: each test starts {@code aya.cli.Main} in a child JVM, sends it SIGINT with
 * {@code kill -INT} while it works, and checks what a llama.cpp user expects (exit code 130, one line on stderr,
 * what was streamed kept, no half-written output, chat back at the prompt). The model is the tiny chat checkpoint
 * with max_position_embeddings raised to 2^20 (its weights do not depend on it), so a generation with
 * --ignore-eos runs long enough to be interrupted.
 */
public class CtrlCTest {

    static final int CONTEXT = 100_000;

    /** The tiny chat model with a context long enough to run for many seconds. */
    public static Path longModel(Path tmp) throws IOException {
        Path dir = tmp.resolve("long-chat");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(ChatFixture.DIR)) {
            for (Path f : files.toList()) Files.copy(f, dir.resolve(f.getFileName()));
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        config.put("max_position_embeddings", 1 << 20);
        json.writeValue(dir.resolve("config.json").toFile(), config);
        return dir;
    }

    /** native when it loads (deterministic whatever the JIT does, so the child and this JVM agree), else java. */
    public static String backend() {
        return Backends.available().contains("native") ? "native" : "java";
    }

    @Test
    void generateStopsWithExitCode130AndKeepsWhatWasStreamed(@TempDir Path tmp) throws Exception {
        Path model = longModel(tmp);
        try (ChildCli child = ChildCli.start("generate", "--model", model.toString(), "--backend", backend(),
                "--threads", "1", "--context", Integer.toString(CONTEXT), "--max-tokens", "-1", "--ignore-eos",
                "--temperature", "0", "Hello")) {
            child.awaitStdout(s -> s.length() >= 200, 120, "200 characters streamed");
            child.sigint();
            assertEquals(130, child.exitCode(30), child.stderr());
            assertEquals(List.of("aya: interrupted"), child.stderrLines(), "one line on stderr, nothing else");
            String streamed = child.stdout();
            assertTrue(streamed.length() >= 200);

            // the same greedy generation in this JVM: what the child printed is the start of it, nothing lost
            String reference = greedyText(model, "Hello", streamed.length());
            assertTrue(reference.startsWith(streamed),
                    () -> "stdout is not the start of the greedy text:\n" + streamed + "\nvs\n" + reference);
        }
    }

    @Test
    void logitsInterruptedLeavesNeitherTheOutputNorATempFile(@TempDir Path tmp) throws Exception {
        Path model = longModel(tmp);
        Path outDir = Files.createDirectories(tmp.resolve("out"));
        StringJoiner ids = new StringJoiner(",");
        for (int i = 0; i < 20_000; i++) ids.add(Integer.toString(5 + i % 400));
        try (ChildCli child = ChildCli.start("logits", "--model", model.toString(), "--backend", backend(),
                "--threads", "1", "--chunk", "1", "--ids", ids.toString(), "--output", outDir.resolve("l.npy").toString())) {
            // the temp file exists and holds some rows: the child is in the middle of writing
            child.await(() -> largestFile(outDir) > 100_000, 120, "rows written to the temp file");
            child.sigint();
            assertEquals(130, child.exitCode(30), child.stderr());
            assertEquals(List.of("aya: interrupted"), child.stderrLines());
        }
        try (Stream<Path> left = Files.list(outDir)) {
            assertEquals(List.of(), left.toList(), "no output and no temp file after Ctrl-C");
        }
    }

    @Test
    void chatCtrlCStopsTheReplyThenAtThePromptQuits(@TempDir Path tmp) throws Exception {
        Path model = longModel(tmp);
        try (ChildCli child = ChildCli.start("chat", "--model", model.toString(), "--backend", backend(),
                "--threads", "1", "--context", Integer.toString(CONTEXT), "--ignore-eos", "--temperature", "0")) {
            PrintStream in = new PrintStream(child.process.getOutputStream(), true, StandardCharsets.UTF_8);
            in.println("Hello");
            child.awaitStdout(s -> s.length() >= 100, 120, "the first reply streams");
            child.sigint();
            child.awaitStderr(s -> s.contains("aya: reply stopped"), 30, "the reply stops");
            child.awaitStdout(s -> s.endsWith("\n"), 30, "the reply line ends");
            String firstReply = child.stdout();
            assertTrue(child.process.isAlive(), "Ctrl-C during a reply does not end chat");

            // back at the prompt: the next message gets a reply
            in.println("Again");
            child.awaitStdout(s -> s.length() >= firstReply.length() + 100, 120, "the second reply streams");
            child.sigint();
            child.awaitStderr(s -> s.split("aya: reply stopped", -1).length == 3, 30, "the second reply stops");
            child.awaitStdout(s -> s.endsWith("\n"), 30, "the second reply line ends");
            Thread.sleep(200); // the child reads the (empty) pipe again: it is at the prompt

            child.sigint(); // at the prompt: quit
            assertEquals(130, child.exitCode(30), child.stderr());
            assertEquals(List.of("aya: reply stopped (Ctrl-C at the prompt quits)",
                    "aya: reply stopped (Ctrl-C at the prompt quits)", "aya: interrupted"), child.stderrLines());
            in.close();
        }
    }

    @Test
    void chatTwoQuickCtrlCsDuringAReplyQuit(@TempDir Path tmp) throws Exception {
        Path model = longModel(tmp);
        try (ChildCli child = ChildCli.start("chat", "--model", model.toString(), "--backend", backend(),
                "--threads", "1", "--context", Integer.toString(CONTEXT), "--ignore-eos", "--temperature", "0")) {
            OutputStream in = child.process.getOutputStream();
            in.write("Hello\n".getBytes(StandardCharsets.UTF_8));
            in.flush();
            child.awaitStdout(s -> s.length() >= 100, 120, "the reply streams");
            child.sigint();
            Thread.sleep(100); // two signals sent at once may merge into one in the kernel
            child.sigint();
            assertEquals(130, child.exitCode(30), child.stderr());
            List<String> lines = child.stderrLines();
            assertEquals("aya: interrupted", lines.getLast(), child.stderr());
        }
    }

    /** The greedy continuation of {@code prompt} (chat template applied, as generate does) up to {@code chars}. */
    private static String greedyText(Path dir, String prompt, int chars) {
        try (AyaModel model = AyaModel.load(dir, new AyaModel.Options(backend(), 1, new PrintStream(OutputStream.nullOutputStream()), null));
             Session session = model.newSession(CONTEXT)) {
            var settings = new GenerationSettings(model.samplerSettings(new SamplerSettings.Overrides(0f, null, null, null,
                    null, null, null)), CONTEXT, List.of(), true);
            int[] ids = model.chatTemplate().orElseThrow().encodeChat(List.of(new aya.tokenizer.ChatTemplate.Message("user", prompt)), true);
            StringBuilder text = new StringBuilder();
            Session.Generation g = session.start(ids, settings);
            while (text.length() < chars + 64 && g.hasNext()) text.append(g.next().text());
            return text.toString();
        }
    }

    private static long largestFile(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.mapToLong(f -> f.toFile().length()).max().orElse(0);
        } catch (IOException e) {
            return 0;
        }
    }
}
