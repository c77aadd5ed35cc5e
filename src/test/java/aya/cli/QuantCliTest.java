package aya.cli;

import aya.model.ModelFixtures;
import aya.weights.Npy;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --quant on the command line: logits of a quantized model, the cache it leaves, and bad values. */
class QuantCliTest {

    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private PrintStream oldErr;

    @BeforeEach
    void capture() {
        oldErr = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setErr(oldErr);
    }

    String stderr() {
        return err.toString(StandardCharsets.UTF_8);
    }

    static Path copy(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    @Test
    void logitsWithQuantQ8UsesAndKeepsTheCache(@TempDir Path tmp) throws IOException {
        String fixture = "hd128-oldconfig";
        Path dir = copy(ModelFixtures.dir(fixture), tmp.resolve("model"));
        String ids = ModelFixtures.csv(ModelFixtures.inputIds(fixture));
        Npy.Matrix ref = Npy.read(dir.resolve("logits.npy"));
        for (int run = 0; run < 2; run++) {
            Path out = tmp.resolve("q8-" + run + ".npy");
            err.reset();
            assertEquals(0, Main.run("logits", "--model", dir.toString(), "--ids", ids, "--output", out.toString(),
                    "--backend", "java", "--quant", "q8_0"), stderr());
            assertEquals(run == 0, stderr().contains("quantizing"), "only the first run quantizes: " + stderr());
            Npy.Matrix got = Npy.read(out);
            double maxRef = 0, maxErr = 0;
            for (int i = 0; i < got.data().length; i++) {
                maxRef = Math.max(maxRef, Math.abs(ref.data()[i]));
                maxErr = Math.max(maxErr, Math.abs(ref.data()[i] - got.data()[i]));
            }
            assertTrue(maxErr > 0 && maxErr <= 0.06 * maxRef, "relative error " + maxErr / maxRef);
        }
        assertTrue(Files.isRegularFile(dir.resolve("aya-cache/model-q8_0.safetensors")));
    }

    @Test
    void generateWithQuantQ4WritesTheCacheAndRuns(@TempDir Path tmp) throws IOException {
        String fixture = "hd128-oldconfig";
        Path dir = copy(ModelFixtures.dir(fixture), tmp.resolve("model"));
        var g = ModelFixtures.greedy(fixture);
        PrintStream oldOut = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, Main.run("generate", "--model", dir.toString(), "--ids", ModelFixtures.csv(ModelFixtures.ints(g.get("prompt"))),
                    "--max-tokens", "4", "--temperature", "0", "--print-ids", "--ignore-eos", "--backend", "java", "--quant", "q4_0"), stderr());
        } finally {
            System.setOut(oldOut);
        }
        assertEquals(4, out.toString(StandardCharsets.UTF_8).strip().split(",").length, out.toString(StandardCharsets.UTF_8));
        assertTrue(Files.isRegularFile(dir.resolve("aya-cache/model-q4_0.safetensors")));
    }

    @Test
    void badQuantIsOneLineExitTwo(@TempDir Path tmp) {
        String model = ModelFixtures.dir("f32-tied").toString();
        for (String[] args : new String[][]{
                {"logits", "--model", model, "--ids", "1,2", "--output", tmp.resolve("x.npy").toString(), "--quant", "q5_1"},
                {"bench", "--model", model, "--quant", "int8", "--gen-tokens", "16", "--prompt-tokens", "0"},
                {"generate", "--model", model, "--ids", "1,2", "--quant", "Q2_K"}}) {
            err.reset();
            assertEquals(2, Main.run(args), stderr());
            String e = stderr().strip();
            assertTrue(e.startsWith("aya: ") && e.contains("expected q8_0 or q4_0"), e);
            assertFalse(e.contains("\n"), "one line: " + e);
        }
        assertFalse(Files.exists(tmp.resolve("x.npy")));
    }
}
