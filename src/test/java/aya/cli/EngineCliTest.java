package aya.cli;

import aya.model.ModelFixtures;
import aya.weights.Npy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** The logits / generate / info commands through {@code Main.run}, against the HF fixtures, and their user errors. */
class EngineCliTest extends CliCapture {

    @Test
    void logitsWritesTheHfLogitsAsNpyInEveryFeedMode(@TempDir Path tmp) {
        String fixture = "bf16-untied-sharded";
        String ids = ModelFixtures.csv(ModelFixtures.inputIds(fixture));
        Npy.Matrix ref = Npy.read(ModelFixtures.dir(fixture).resolve("logits.npy"));
        for (String chunk : new String[] {null, "1", "4"}) {
            Path file = tmp.resolve("logits-" + chunk + ".npy");
            String[] args = chunk == null
                    ? new String[] {"logits", "--model", ModelFixtures.dir(fixture).toString(), "--ids", ids, "--output", file.toString(), "--backend", "java"}
                    : new String[] {"logits", "--model", ModelFixtures.dir(fixture).toString(), "--ids", ids, "--output", file.toString(), "--backend", "java", "--chunk", chunk, "--threads", "1"};
            assertEquals(0, Main.run(args), stderr());
            Npy.Matrix got = Npy.read(file);
            assertEquals(ref.rows(), got.rows());
            assertEquals(ref.cols(), got.cols());
            double maxRef = 0, maxErr = 0;
            for (int i = 0; i < got.data().length; i++) {
                maxRef = Math.max(maxRef, Math.abs(ref.data()[i]));
                maxErr = Math.max(maxErr, Math.abs(ref.data()[i] - got.data()[i]));
            }
            assertTrue(maxErr <= 1e-4 * maxRef, "chunk " + chunk + ": max error " + maxErr);
        }
    }

    @Test
    void generatePrintsExactlyOneLineOfGreedyIds() {
        for (String fixture : ModelFixtures.NAMES) {
            out.reset();
            var g = ModelFixtures.greedy(fixture);
            int code = Main.run("generate", "--model", ModelFixtures.dir(fixture).toString(),
                    "--ids", ModelFixtures.csv(ModelFixtures.ints(g.get("prompt"))),
                    "--max-tokens", g.get("max_new_tokens").asText(), "--temperature", "0", "--print-ids", "--backend", "java");
            assertEquals(0, code, stderr());
            assertEquals(ModelFixtures.csv(ModelFixtures.ints(g.get("ids"))) + System.lineSeparator(), stdout(), fixture);
        }
    }

    @Test
    void generateStopsAtEosUnlessIgnored(@TempDir Path tmp) throws IOException {
        // Make the fixture's first greedy token an eos id: generation must stop right after it (HF includes it).
        String fixture = "f32-tied";
        Path dir = copy(fixture, tmp);
        var g = ModelFixtures.greedy(fixture);
        int[] expect = ModelFixtures.ints(g.get("ids"));
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [" + expect[1] + ", 3]}");
        String prompt = ModelFixtures.csv(ModelFixtures.ints(g.get("prompt")));
        assertEquals(0, Main.run("generate", "--model", dir.toString(), "--ids", prompt, "--max-tokens", "6",
                "--temperature", "0", "--print-ids", "--backend", "java"), stderr());
        assertEquals(expect[0] + "," + expect[1], stdout().strip());
        out.reset();
        assertEquals(0, Main.run("generate", "--model", dir.toString(), "--ids", prompt, "--max-tokens", "3",
                "--temperature", "0", "--print-ids", "--ignore-eos", "--backend", "java"), stderr());
        assertEquals(expect[0] + "," + expect[1] + "," + expect[2], stdout().strip());
    }

    @Test
    void infoSummarizesTheCheckpoint() {
        assertEquals(0, Main.run("info", "--model", ModelFixtures.dir("bf16-untied-sharded").toString(), "--backend", "java"), stderr());
        String s = stdout();
        assertTrue(s.contains("SGGSS"), s);
        assertTrue(s.contains("lm_head.weight"), s);
        // 300*96 embed + 300*96 head + 5 layers * (96 + 2*96*96 + 2*32*96 + 3*196*96) + 96
        long params = 300L * 96 * 2 + 5L * (96 + 2 * 96 * 96 + 2 * 32 * 96 + 3 * 196 * 96) + 96;
        assertTrue(s.contains(String.format("%,d", params)), s);
        assertTrue(s.contains(String.format("%,d bytes per token", 2 * 2 * 32 * 4)), s); // 2 global layers, K+V, kvDim 32, f32
    }

    // ------------------------------------------------------------------------------------------ user errors

    int fails(String... args) {
        err.reset();
        int code = Main.run(args);
        assertEquals(2, code, "exit code for " + String.join(" ", args) + ": " + stderr());
        String e = stderr().strip();
        assertTrue(e.startsWith("aya: "), e);
        assertFalse(e.contains("\tat "), "no stack trace: " + e);
        return code;
    }

    @Test
    void badInputsGiveOneLineAndExitTwo(@TempDir Path tmp) {
        String model = ModelFixtures.dir("f32-tied").toString();
        String npy = tmp.resolve("x.npy").toString();
        fails("logits", "--model", tmp.resolve("nope").toString(), "--ids", "1,2", "--output", npy, "--backend", "java");
        assertTrue(stderr().contains("not a directory"), stderr());
        fails("logits", "--model", model, "--ids", "1,x,3", "--output", npy, "--backend", "java");
        assertTrue(stderr().contains("'x'"), stderr());
        fails("logits", "--model", model, "--ids", "", "--output", npy, "--backend", "java");
        fails("logits", "--model", model, "--ids", "1,,2", "--output", npy, "--backend", "java");
        fails("logits", "--model", model, "--ids", "1,-4", "--output", npy, "--backend", "java");
        assertTrue(stderr().contains("-4"), stderr());
        fails("logits", "--model", model, "--ids", "1,320", "--output", npy, "--backend", "java");
        assertTrue(stderr().contains("320") && stderr().contains("vocab_size"), stderr());
        fails("logits", "--model", model, "--ids", "1,99999999999", "--output", npy, "--backend", "java");
        fails("logits", "--model", model, "--ids", "1,2,3", "--context", "2", "--output", npy, "--backend", "java");
        assertTrue(stderr().contains("context"), stderr());
        fails("logits", "--model", model, "--ids", "1,2", "--output", npy, "--chunk", "0", "--backend", "java");
        fails("logits", "--model", model, "--ids", "1,2", "--output", tmp.resolve("no/such/dir/x.npy").toString(), "--backend", "java");
        fails("logits", "--model", model, "--ids", "1,2", "--output", tmp.toString(), "--backend", "java");
        assertTrue(stderr().contains("directory"), stderr());
        fails("generate", "--model", model, "--ids", "1,2", "--max-tokens", "2147483647", "--print-ids", "--backend", "java");
        fails("logits", "--model", model, "--ids", "1,2", "--output", npy, "--backend", "cuda");
        assertTrue(stderr().contains("cuda"), stderr());
        fails("generate", "--model", model, "--ids", "1,2", "--max-tokens", "200", "--print-ids", "--backend", "java");
        assertTrue(stderr().contains("context"), stderr()); // max_position_embeddings is 128
        fails("info", "--model", tmp.toString(), "--backend", "java");
        assertTrue(stderr().contains("config.json"), stderr());
        assertFalse(Files.exists(Path.of(npy)), "nothing written on failure");
    }

    @Test
    void failedLogitsLeaveNoPartialFile(@TempDir Path tmp) throws IOException {
        Path dir = copy("f32-tied", tmp.resolve("m"));
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(all, all.length / 2));
        Path npy = tmp.resolve("out.npy");
        fails("logits", "--model", dir.toString(), "--ids", "1,2", "--output", npy.toString(), "--backend", "java");
        assertTrue(stderr().contains("truncated"), stderr());
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(1, left.count(), "only the model dir remains: no temp or partial output");
        }
    }

    static Path copy(String fixture, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(ModelFixtures.dir(fixture))) {
            for (Path f : (Iterable<Path>) files::iterator) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }
}
